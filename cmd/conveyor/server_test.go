package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/secrets"
)

// Flags beat CONVEYOR_* variables, which beat the config file.
func TestServerConfigPrecedence(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *string, *string, *time.Duration, *listFlag) {
		fs := flag.NewFlagSet("server", flag.ContinueOnError)
		listen := fs.String("listen", "127.0.0.1:8080", "")
		data := fs.String("data", "conveyor-data", "")
		base := fs.String("base-url", "", "")
		ttl := fs.Duration("lease-ttl", 30*time.Second, "")
		var plats listFlag
		fs.Var(&plats, "P", "")
		fs.String("config", "", "")
		return fs, listen, data, base, ttl, &plats
	}
	file := filepath.Join(t.TempDir(), "conveyor.yml")
	if err := os.WriteFile(file, []byte("listen: 0.0.0.0:9000\ndata: /from/file\nbase-url: https://ci.example\nlease-ttl: 1m\nP: [gpu=-self-hosted, arm=img]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONVEYOR_DATA", "/from/env")
	t.Setenv("CONVEYOR_LEASE_TTL", "45s")
	fs, listen, data, base, ttl, plats := newFS()
	if err := fs.Parse([]string{"--lease-ttl", "5s"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnvAndFile(fs, file); err != nil {
		t.Fatal(err)
	}
	if *listen != "0.0.0.0:9000" || *data != "/from/env" || *base != "https://ci.example" || *ttl != 5*time.Second {
		t.Errorf("listen %q data %q base %q ttl %s", *listen, *data, *base, *ttl)
	}
	if plats.String() != "gpu=-self-hosted,arm=img" {
		t.Errorf("P from the file: %q", plats.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("lisen: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _, _, _, _, _ = newFS()
	_ = fs.Parse(nil)
	if err := applyEnvAndFile(fs, bad); err == nil || !strings.Contains(err.Error(), `unknown setting "lisen"`) {
		t.Errorf("unknown key: %v", err)
	}
	t.Setenv("CONVEYOR_LEASE_TTL", "soon")
	fs, _, _, _, _, _ = newFS()
	_ = fs.Parse(nil)
	if err := applyEnvAndFile(fs, ""); err == nil || !strings.Contains(err.Error(), "CONVEYOR_LEASE_TTL") {
		t.Errorf("bad env value: %v", err)
	}
}

// With PostgreSQL a per-replica key file would split the sealed
// credentials between replicas: the server refuses to start without a key
// given on purpose, before it touches the database; admin new-key makes one.
func TestServerPostgresNeedsASharedKey(t *testing.T) {
	t.Setenv("CONVEYOR_SECRET_KEY", "")
	var out, errOut strings.Builder
	code := serverMain(context.Background(), []string{"--data", t.TempDir(), "--database", "postgres://nobody@127.0.0.1:1/none", "--listen", "127.0.0.1:0"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "every replica must seal credentials with the same key") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := adminMain(context.Background(), []string{"new-key"}, &out, &errOut); code != 0 {
		t.Fatalf("admin new-key: exit %d: %s", code, errOut.String())
	}
	if _, err := secrets.ParseKey(strings.TrimSpace(out.String())); err != nil {
		t.Errorf("admin new-key printed %q: %v", out.String(), err)
	}
}

// --kube-worker pod needs the URL pods reach the server at; attach takes
// none; other layouts are refused.
func TestPodWorkersFlags(t *testing.T) {
	for _, c := range []struct {
		layout, url, want string
		ok                bool
	}{
		{"attach", "", "", true},
		{"", "", "", true},
		{"pod", "http://10.242.0.1:8080", "http://10.242.0.1:8080", true},
		{"pod", "", "", false},
		{"pod", "10.242.0.1:8080", "", false},
		{"attach", "http://x", "http://x", true}, // for pools with worker: pod
		{"attach", "x", "", false},
		{"exec", "", "", false},
	} {
		pw, err := podWorkers(c.layout, c.url)
		if (err == nil) != c.ok || pw.ServerURL != c.want {
			t.Errorf("podWorkers(%q, %q) = %+v, %v", c.layout, c.url, pw, err)
		}
	}
}
