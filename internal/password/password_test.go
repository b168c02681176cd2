package password

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// fast keeps the tests quick; Default is what the server uses.
var fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashAndVerify(t *testing.T) {
	h, err := Hash("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q does not carry its parameters", h)
	}
	again, _ := Hash("correct horse", fast)
	if again == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false, "Correct horse": false} {
		if ok, err := Verify(pw, h); err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if _, err := Hash("", fast); !errs.Is(err, errs.Invalid) {
		t.Errorf("Hash of an empty password: %v, want Invalid", err)
	}
	if _, err := Hash(strings.Repeat("x", MaxLen+1), fast); !errs.Is(err, errs.Invalid) {
		t.Errorf("Hash of an over-long password: %v, want Invalid", err)
	}
}

// A hash made with other parameters verifies with its own ones.
func TestVerifyUsesStoredParameters(t *testing.T) {
	h, err := Hash("pw", Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 24, KeyLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify("pw", h); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

func TestParseRefusesBadHashes(t *testing.T) {
	good, _ := Hash("pw", fast)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, // 4 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
	} {
		if _, err := Verify("pw", bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("Verify with hash %q: %v, want Invalid", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Hash("pw", fast)
	for _, s := range []string{good, "", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999999,t=1,p=1$x$y", "$$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Parse(s)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Parse(%q): error without kind Invalid: %v", s, err)
			}
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || len(salt) < 8 || len(key) < 16 || p.Memory < 8*uint32(p.Threads) {
			t.Fatalf("Parse(%q) accepted parameters beyond the limits: %+v", s, p)
		}
	})
}

// BenchmarkHashDefault is the cost of one login check with the server's
// parameters (Verify costs the same).
func BenchmarkHashDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", Default); err != nil {
			b.Fatal(err)
		}
	}
}
