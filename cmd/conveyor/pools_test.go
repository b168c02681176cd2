package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
