package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
)

// --node: a bare name is looked up in PATH and a link resolved (so that a
// bind mount gets the program itself); a missing program stays as given,
// for the jobs that need it to name; containers get only a regular file.
func TestResolveNode(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "node-real")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(prog, filepath.Join(dir, "mynode")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	for in, want := range map[string]string{
		"mynode":                     prog,
		filepath.Join(dir, "mynode"): prog,
		"/nonexistent/node":          "/nonexistent/node",
		"absent":                     "absent",
		"":                           "", // no node on PATH
	} {
		if got := resolveNode(in); got != want {
			t.Errorf("resolveNode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (toolOptions{node: "/nonexistent/node"}).containerNode(); got != "" {
		t.Errorf("a missing node is given to containers: %q", got)
	}
	if got := (toolOptions{node: prog}).containerNode(); got != prog {
		t.Errorf("containerNode = %q, want %q", got, prog)
	}
}

func TestToolFlags(t *testing.T) {
	t.Setenv("CONVEYOR_NODE", "")
	t.Setenv("CONVEYOR_TOOL_CACHE", "")
	var tf toolFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	tf.register(fs)
	if err := fs.Parse([]string{"--tool-cache", "rel/tc"}); err != nil {
		t.Fatal(err)
	}
	o := tf.options("/default/tc")
	if abs, _ := filepath.Abs("rel/tc"); o.toolCache != abs {
		t.Errorf("toolCache = %q, want %q", o.toolCache, abs)
	}
	if o.volume != docker.DefaultToolCacheVolume {
		t.Errorf("volume = %q", o.volume)
	}
	t.Setenv("CONVEYOR_TOOL_CACHE", "/from/env")
	var te toolFlags
	fs = flag.NewFlagSet("y", flag.ContinueOnError)
	te.register(fs)
	if o := te.options("/default/tc"); o.toolCache != "/from/env" {
		t.Errorf("env: toolCache = %q", o.toolCache)
	}
	if o := (&toolFlags{}).options("/default/tc"); o.toolCache != "/default/tc" {
		t.Errorf("default: toolCache = %q", o.toolCache)
	}
}

// The node's version is asked once, at start, with --version; anything
// but a version is no answer (jobs then ask themselves).
func TestAskNodeVersion(t *testing.T) {
	dir := t.TempDir()
	for script, want := range map[string]string{
		"echo v99.1.0":        "v99.1.0",
		"echo hello":          "",
		"echo v1.0.0; exit 3": "",
		"echo 'v1 and more'":  "",
	} {
		p := filepath.Join(dir, "node")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if got := (toolOptions{node: p}).askNodeVersion(context.Background()); got != want {
			t.Errorf("%s: got %q, want %q", script, got, want)
		}
		os.Remove(p)
	}
	if got := (toolOptions{node: "/nonexistent/node"}).askNodeVersion(context.Background()); got != "" {
		t.Errorf("missing node: %q", got)
	}
}

// run, server and agent open their backends with the tool options: a host
// job's sandbox has the tool cache and the node (with the version asked
// once).
func TestOpenBackendsTools(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if err := os.WriteFile(node, []byte("#!/bin/sh\necho v42.0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tc := filepath.Join(dir, "tc")
	bk, err := openBackendsWith(context.Background(), "host", "", io.Discard, nil, toolOptions{node: node, toolCache: tc, volume: docker.DefaultToolCacheVolume})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.close()
	jobDir := t.TempDir()
	sb, err := bk.host.Setup(context.Background(), &backend.JobSpec{ID: "j", Name: "j", JobDir: jobDir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Teardown(context.Background())
	if got := sb.Dirs().ToolCache; got != tc {
		t.Errorf("ToolCache = %q, want %q", got, tc)
	}
	if fi, err := os.Stat(tc); err != nil || !fi.IsDir() {
		t.Errorf("the tool cache was not made: %v", err)
	}
	nodes, err := sb.(backend.NodeProvider).Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].Argv[0] != node || nodes[0].Version != "v42.0.1" {
		t.Errorf("Nodes = %+v, %v", nodes, err)
	}
}
