package stepwait

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDirWatch: the watch wakes its waiter on a file renamed into the
// folder (how specs and exit files arrive) and on output written to a
// file there, long before the wait's bound; without an event, the wait
// ends at its bound.
func TestDirWatch(t *testing.T) {
	dir := t.TempDir()
	w := watchDir(dir)
	if w == nil {
		t.Fatal("no inotify watch on Linux")
	}
	defer w.close()
	const bound = 60 * time.Second
	woke := func(what string, do func()) {
		t.Helper()
		go func() { time.Sleep(20 * time.Millisecond); do() }()
		start := time.Now()
		w.wait(bound)
		if d := time.Since(start); d > bound/2 {
			t.Fatalf("%s: the wait was not woken (%s)", what, d)
		}
	}
	woke("rename", func() {
		if err := writeFile(filepath.Join(dir, "1.spec"), []byte("{}")); err != nil {
			t.Error(err)
		}
	})
	out, err := os.OpenFile(filepath.Join(dir, "1.out"), os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w.wait(10 * time.Millisecond) // the create's event
	woke("write", func() { _, _ = out.Write([]byte("line\n")) })

	start := time.Now()
	w.wait(30 * time.Millisecond)
	if d := time.Since(start); d < 20*time.Millisecond || d > bound/2 {
		t.Fatalf("a wait without events took %s, want its bound of 30ms", d)
	}
}
