package sqlstore

import (
	"github.com/klauspost/compress/zstd"
)

// Log chunks are stored zstd-compressed (log_chunks.compressed = 1) when
// that makes them smaller; chunks written before schema version 10, and
// those that do not shrink, stay as they are (compressed = 0).

// maxChunkMemory bounds what decompressing one stored chunk may allocate:
// chunks are at most a few MB, so more is a corrupt or hostile frame.
const maxChunkMemory = 64 << 20

// logCodec compresses and decompresses log chunks. Both sides are safe for
// concurrent use and keep a few reusable states.
type logCodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newLogCodec() (*logCodec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxChunkMemory))
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &logCodec{enc: enc, dec: dec}, nil
}

// pack returns what to store for data and whether it is compressed.
func (c *logCodec) pack(data []byte) ([]byte, bool) {
	if len(data) < 64 {
		return data, false
	}
	z := c.enc.EncodeAll(data, make([]byte, 0, len(data)/4))
	if len(z) >= len(data) {
		return data, false
	}
	return z, true
}

// unpack returns the chunk stored as b, in a new slice (b may be the
// driver's buffer).
func (c *logCodec) unpack(b []byte, compressed bool) ([]byte, error) {
	if !compressed {
		return append([]byte(nil), b...), nil
	}
	return c.dec.DecodeAll(b, nil)
}

func (c *logCodec) close() {
	c.dec.Close()
	_ = c.enc.Close()
}
