package logs

import (
	"fmt"
	"strings"
	"testing"
)

// benchSecrets returns n secret-looking values of 24 characters.
func benchSecrets(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("tok_%08x_%010d", uint32(i)*2654435761, i)
	}
	return s
}

// benchLine is a typical build-log line of about 100 bytes.
const benchLine = "2026-12-07T10:00:00Z [INFO] compiling package github.com/example/project/internal/thing (1/42)"

// The masker over lines of build output without a secret (the common case)
// and with one, for several numbers of registered secrets.
func BenchmarkMaskerApply(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		m := NewMasker()
		secrets := benchSecrets(n)
		for _, s := range secrets {
			m.Add(s)
		}
		withSecret := benchLine + " token=" + secrets[n/2]
		b.Run(fmt.Sprintf("secrets=%d/clean", n), func(b *testing.B) {
			b.SetBytes(int64(len(benchLine)))
			for i := 0; i < b.N; i++ {
				if m.Apply(benchLine) != benchLine {
					b.Fatal("changed a clean line")
				}
			}
		})
		b.Run(fmt.Sprintf("secrets=%d/secret", n), func(b *testing.B) {
			b.SetBytes(int64(len(withSecret)))
			for i := 0; i < b.N; i++ {
				if !strings.HasSuffix(m.Apply(withSecret), Mask) {
					b.Fatal("secret not masked")
				}
			}
		})
	}
}

// A batch of 100 clean lines, as one write of a chatty step hands on.
func BenchmarkMaskerApplyLines(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		m := NewMasker()
		for _, s := range benchSecrets(n) {
			m.Add(s)
		}
		lines := make([]string, 100)
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.SetBytes(int64(100 * len(benchLine)))
			for i := 0; i < b.N; i++ {
				for j := range lines {
					lines[j] = benchLine
				}
				m.ApplyLines(lines)
			}
		})
	}
}
