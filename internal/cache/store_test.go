package cache

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// clock ticks one second a call, so "newest" and "least recently used" are exact.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func dirStore(t *testing.T, limit int64) *Store {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(d, limit)
	s.now = (&clock{t: time.Unix(1e9, 0)}).now
	return s
}

func s3Store(t *testing.T, limit int64) *Store {
	url, ak, sk := testenv.S3(t)
	b, err := NewS3(context.Background(), S3Config{URL: url, Bucket: "conveyor-test", Prefix: fmt.Sprintf("t%d/", time.Now().UnixNano()),
		AccessKey: ak, SecretKey: sk, PathStyle: true, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(b, limit)
	s.now = (&clock{t: time.Unix(1e9, 0)}).now
	return s
}

func save(t *testing.T, s *Store, ref, key, body string) *Entry {
	t.Helper()
	e, err := s.Save(context.Background(), Entry{Repo: "o/r", Ref: ref, Key: key, Version: "v1"}, strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("save %s: %v", key, err)
	}
	return e
}

func lookup(t *testing.T, s *Store, ref string, keys ...string) string {
	t.Helper()
	e, err := s.Lookup(context.Background(), Query{Repo: "o/r", Ref: ref, DefaultRef: "refs/heads/main", Keys: keys, Version: "v1"})
	if errs.KindOf(err) == errs.NotFound {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return e.Key + "=" + string(b)
}

func TestStoreDir(t *testing.T) { suite(t, dirStore) }
func TestStoreS3(t *testing.T)  { suite(t, s3Store) }

func suite(t *testing.T, mk func(*testing.T, int64) *Store) {
	t.Run("restore-keys newest first", func(t *testing.T) {
		s := mk(t, 0)
		main := "refs/heads/main"
		save(t, s, main, "npm-linux-aaa", "1")
		save(t, s, main, "npm-linux-bbb", "2")
		save(t, s, main, "npm-mac-ccc", "3")
		cases := []struct {
			keys []string
			want string
		}{
			{[]string{"npm-linux-aaa", "npm-"}, "npm-linux-aaa=1"},       // exact primary beats newer prefixes
			{[]string{"npm-linux-zzz", "npm-linux-"}, "npm-linux-bbb=2"}, // newest prefix match
			{[]string{"npm-linux-zzz", "npm-"}, "npm-mac-ccc=3"},
			{[]string{"npm-linux"}, "npm-linux-bbb=2"}, // prefix match of the primary key
			{[]string{"yarn-", "pip-"}, ""},
		}
		for _, c := range cases {
			if got := lookup(t, s, main, c.keys...); got != c.want {
				t.Errorf("%q: got %q, want %q", c.keys, got, c.want)
			}
		}
		if _, err := s.Lookup(context.Background(), Query{Repo: "o/r", Ref: main, Keys: []string{"npm-"}, Version: "v2"}); errs.KindOf(err) != errs.NotFound {
			t.Errorf("other version: %v, want not found", err)
		}
		if _, err := s.Lookup(context.Background(), Query{Repo: "o/other", Ref: main, Keys: []string{"npm-"}, Version: "v1"}); errs.KindOf(err) != errs.NotFound {
			t.Errorf("other repository: %v, want not found", err)
		}
		if _, err := s.Save(context.Background(), Entry{Repo: "o/r", Ref: main, Key: "npm-mac-ccc", Version: "v1"}, strings.NewReader("x"), 1); errs.KindOf(err) != errs.Conflict {
			t.Errorf("second save of a key: %v, want conflict", err)
		}
	})
	t.Run("branch scope", func(t *testing.T) {
		s := mk(t, 0)
		save(t, s, "refs/heads/main", "go-1", "main")
		save(t, s, "refs/heads/feature", "go-2", "feature")
		if got := lookup(t, s, "refs/heads/feature", "go-9", "go-"); got != "go-2=feature" {
			t.Errorf("feature sees %q, want its own newest", got)
		}
		if got := lookup(t, s, "refs/heads/feature", "go-1"); got != "go-1=main" {
			t.Errorf("feature sees %q, want the default branch's go-1", got)
		}
		if got := lookup(t, s, "refs/heads/other", "go-2", "go-"); got != "go-1=main" {
			t.Errorf("another branch sees %q: a feature branch's cache must not leak (want main's go-1 by prefix)", got)
		}
		if got := lookup(t, s, "refs/heads/main", "go-2", "go-"); got != "go-1=main" {
			t.Errorf("main sees %q, want only its own", got)
		}
	})
	t.Run("LRU eviction", func(t *testing.T) {
		s := mk(t, 10)
		save(t, s, "refs/heads/main", "a", "aaaa")
		save(t, s, "refs/heads/main", "b", "bbbb")
		if got := lookup(t, s, "refs/heads/main", "a"); got != "a=aaaa" { // a is now the most recently used
			t.Fatalf("a: %q", got)
		}
		save(t, s, "refs/heads/main", "c", "cccc") // 12 bytes > 10: b, least recently used, goes
		if got := lookup(t, s, "refs/heads/main", "b"); got != "" {
			t.Errorf("b survived eviction: %q", got)
		}
		for _, k := range []string{"a", "c"} {
			if got := lookup(t, s, "refs/heads/main", k); got != k+"="+strings.Repeat(k, 4) {
				t.Errorf("%s: %q", k, got)
			}
		}
		if _, err := s.Save(context.Background(), Entry{Repo: "o/r", Ref: "refs/heads/main", Key: "big", Version: "v1"}, strings.NewReader("0123456789ab"), -1); errs.KindOf(err) != errs.TooLarge {
			t.Errorf("over the limit: %v, want too large", err)
		}
	})
}

func TestVersion(t *testing.T) {
	// The value actions/cache computes for path "~/.npm" with zstd on Linux
	// (computed with node's crypto from the same components).
	if got, want := Version([]string{"~/.npm"}, "zstd-without-long", false), "c242501c19ada3dcced7a83b074ccb8e79f816602d4125493924624b38591de2"; got != want {
		t.Errorf("Version = %q", got)
	}
	if Version([]string{"a"}, "zstd", false) == Version([]string{"a"}, "zstd", true) {
		t.Error("windows-only does not change the version")
	}
}

// TestEvictUnused: entries last used before the cut-off go, others stay,
// and a restore counts as a use.
func TestEvictUnused(t *testing.T) {
	s := dirStore(t, 0)
	ctx := context.Background()
	old := save(t, s, "refs/heads/main", "old", "a")
	used := save(t, s, "refs/heads/main", "used", "b")
	fresh := save(t, s, "refs/heads/main", "fresh", "c")
	rc, err := s.Open(ctx, used) // touched after fresh was saved
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	n, err := s.EvictUnused(ctx, "o/r", fresh.Accessed)
	if err != nil || n != 1 {
		t.Fatalf("evicted %d, %v; want 1", n, err)
	}
	if _, err := s.Get(ctx, "o/r", old.ID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("the unused entry is still there (%v)", err)
	}
	for _, e := range []*Entry{used, fresh} {
		if _, err := s.Get(ctx, "o/r", e.ID); err != nil {
			t.Errorf("%s: %v", e.Key, err)
		}
	}
}
