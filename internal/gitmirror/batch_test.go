package gitmirror

import (
	"context"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// One long-lived cat-file serves every read of a mirror: it finds commits
// fetched after it started, sees a changed workflow folder as changed
// (remembered by tree id, not by commit), survives a cancelled read, and
// stops with Close.
func TestReadFilesLongLivedReader(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	read := func(sha string) map[string][]byte {
		t.Helper()
		got, err := c.ReadFiles(ctx, key, sha, ".github/workflows")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := read(src.main)
	pid := c.batch[c.mustDir(t)].cmd.Process.Pid

	// A commit that leaves the folder alone, then one that changes it,
	// both fetched after the reader started.
	src.write("README", "x\n")
	same := src.commit("readme")
	src.write(".github/workflows/ci.yml", "name: ci2\non: push\n")
	changed := src.commit("ci2")
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	if got := read(same); string(got[".github/workflows/ci.yml"]) != string(first[".github/workflows/ci.yml"]) {
		t.Errorf("unchanged folder read %q", got[".github/workflows/ci.yml"])
	}
	got := read(changed)
	if string(got[".github/workflows/ci.yml"]) != "name: ci2\non: push\n" || string(got[".github/workflows/link.yml"]) != "name: ci2\non: push\n" {
		t.Errorf("changed folder read ci.yml %q, link.yml %q", got[".github/workflows/ci.yml"], got[".github/workflows/link.yml"])
	}
	if p := c.batch[c.mustDir(t)].cmd.Process.Pid; p != pid {
		t.Errorf("the reader was restarted (pid %d, then %d)", pid, p)
	}

	// A read whose context has ended kills the reader; the next starts one.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.ReadFiles(dead, key, changed, ".github/workflows"); err == nil {
		t.Error("a read with a cancelled context succeeded")
	}
	if got := read(changed); string(got[".github/workflows/ci.yml"]) != "name: ci2\non: push\n" {
		t.Errorf("after a cancelled read: %q", got[".github/workflows/ci.yml"])
	}

	// A commit the mirror lacks is NotFound, as before.
	if _, err := c.ReadFiles(ctx, key, "0123456789012345678901234567890123456789", ".github/workflows"); !errs.Is(err, errs.NotFound) {
		t.Errorf("missing commit: %v", err)
	}

	c.Close()
	b := c.batch
	if b != nil {
		t.Errorf("readers left after Close: %d", len(b))
	}
	done := make(chan error, 1)
	go func() { _, err := c.ReadFiles(ctx, key, changed, ".github/workflows"); done <- err }()
	select {
	case err := <-done:
		if !errs.Is(err, errs.Unavailable) {
			t.Errorf("read after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read after Close hangs")
	}
}

func (c *Cache) mustDir(t *testing.T) string {
	t.Helper()
	dir, err := c.existing("test", key)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
