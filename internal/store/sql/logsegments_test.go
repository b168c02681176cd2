package sqlstore

import (
	"bytes"
	"testing"
)

// FuzzReadSegment: any bytes read as a segment give chunks or an error,
// never a panic; a segment encodeSegment made reads back as it was.
func FuzzReadSegment(f *testing.F) {
	f.Add(encodeSegment([]storedChunk{{Seq: 1, At: 5, Data: []byte("hello\n")}, {Seq: 2, At: -1, Z: true, Data: []byte{0x28, 0xb5}}}))
	f.Add([]byte(segmentMagic))
	f.Add([]byte(segmentMagic + "\x01\x02\x00\xff\xff\xff\xff\x0f"))
	f.Add([]byte("not a segment"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []storedChunk
		err := readSegment(bytes.NewReader(b), func(c storedChunk) bool {
			c.Data = append([]byte(nil), c.Data...)
			got = append(got, c)
			return true
		})
		if err != nil {
			return
		}
		again := encodeSegment(got)
		var back []storedChunk
		if err := readSegment(bytes.NewReader(again), func(c storedChunk) bool {
			c.Data = append([]byte(nil), c.Data...)
			back = append(back, c)
			return true
		}); err != nil {
			t.Fatalf("re-encoded segment: %v", err)
		}
		if len(back) != len(got) {
			t.Fatalf("%d chunks, then %d", len(got), len(back))
		}
		for i := range got {
			if got[i].Seq != back[i].Seq || got[i].At != back[i].At || got[i].Z != back[i].Z || !bytes.Equal(got[i].Data, back[i].Data) {
				t.Fatalf("chunk %d: %+v, then %+v", i, got[i], back[i])
			}
		}
	})
}
