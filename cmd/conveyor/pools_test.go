package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A bad --pools file stops the server at start with where and why.
func TestServerBadPoolsFile(t *testing.T) {
	t.Setenv("CONVEYOR_SECRET_KEY", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "pools.yml")
	if err := os.WriteFile(file, []byte("pools:\n  - name: a\n    kind: nomad\n    capacity: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := serverMain(context.Background(), []string{"--data", filepath.Join(dir, "data"), "--backend", "host", "--listen", "127.0.0.1:0", "--pools", file}, &out, &errOut)
	if want := file + ":3:11: pool a: kind \"nomad\""; code != 2 || !strings.Contains(errOut.String(), want) {
		t.Fatalf("exit %d, want 2 and %q: %s", code, want, errOut.String())
	}
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A pool's kubeconfig that cannot be read stops the server naming the
// pool; a good file starts it with its pools, which it names, and their
// probes.
func TestServerPools(t *testing.T) {
	t.Setenv("CONVEYOR_SECRET_KEY", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	missing := filepath.Join(dir, "no-kubeconfig")
	if err := os.WriteFile(bad, []byte("pools:\n  - {name: k, kind: kubernetes, capacity: 2, kubeconfig: "+missing+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	code := serverMain(context.Background(), []string{"--data", filepath.Join(dir, "d1"), "--backend", "host", "--listen", "127.0.0.1:0", "--pools", bad}, io.Discard, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "pool k:") || !strings.Contains(errOut.String(), "no-kubeconfig") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}

	good := filepath.Join(dir, "good.yml")
	if err := os.WriteFile(good, []byte("pools:\n  - {name: h1, kind: host, capacity: 2}\n  - {name: h2, kind: host, capacity: 1, labels: [self-hosted]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- serverMain(ctx, []string{"--data", filepath.Join(dir, "d2"), "--backend", "host", "--listen", "127.0.0.1:0", "--pools", good}, &out, &logs)
	}()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), "jobs on backend pools h1, h2") || !strings.Contains(logs.String(), `msg="backend pool healthy" pool=h2`) {
		select {
		case code := <-done:
			t.Fatalf("server ended: %d\n%s\n%s", code, out.String(), logs.String())
		case <-deadline:
			t.Fatalf("server did not start with its pools:\n%s\n%s", out.String(), logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, logs.String())
	}
}
