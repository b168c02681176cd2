// Package password hashes and checks user passwords with argon2id
// (RFC 9106). A hash is stored in the PHC string format, with its own salt
// and parameters, so that the parameters can grow without breaking the
// hashes made before:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt, base64>$<key, base64>
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen int
	KeyLen  uint32
}

// Default follows RFC 9106's second recommendation (64 MiB, 3 passes),
// with 2 lanes: about 60 ms on one core of a small server.
var Default = Params{Memory: 64 << 10, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}

// Limits on parameters read from a stored hash: a hash written by someone
// else must not make a login cost a gigabyte or a minute.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 16
	maxKeyLen  = 128
	maxSaltLen = 64
	// MaxLen bounds the password itself (argon2 reads all of it).
	MaxLen = 1024
)

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of pw with a new random salt.
func Hash(pw string, p Params) (string, error) {
	const op = "password.Hash"
	if pw == "" {
		return "", errs.E(op, errs.Invalid, "empty password")
	}
	if len(pw) > MaxLen {
		return "", errs.E(op, errs.Invalid, "password longer than %d bytes", MaxLen)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", errs.Wrap(op, errs.Other, err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the PHC string encoded, comparing in
// constant time. A malformed hash is an Invalid error.
func Verify(pw, encoded string) (bool, error) {
	p, salt, key, err := Parse(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// Parse reads a PHC argon2id string into its parameters, salt and key,
// refusing parameters beyond the limits above.
func Parse(encoded string) (Params, []byte, []byte, error) {
	const op = "password.Parse"
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, errs.E(op, errs.Invalid, "password hash: %s", why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a $argon2id$v=..$m=..,t=..,p=..$salt$key string")
	}
	if parts[1] != "argon2id" {
		return bad(fmt.Sprintf("algorithm %q is not argon2id", parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad(fmt.Sprintf("version %q is not v=%d", parts[2], argon2.Version))
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return bad(fmt.Sprintf("parameter %q is not a positive number", kv))
		}
		switch {
		case k == "m" && n <= maxMemory:
			p.Memory = uint32(n)
		case k == "t" && n <= maxTime:
			p.Time = uint32(n)
		case k == "p" && n <= 255:
			p.Threads = uint8(n)
		default:
			return bad(fmt.Sprintf("parameter %q is unknown or too large", kv))
		}
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) {
		return bad("m, t and p are required (m at least 8*p)")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxSaltLen {
		return bad("salt is not 8 to 64 bytes of base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return bad("key is not 16 to 128 bytes of base64")
	}
	p.SaltLen, p.KeyLen = len(salt), uint32(len(key))
	return p, salt, key, nil
}
