package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/server"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// TestAgentCommands drives agent-token, agents, agent drain|resume and a
// real conveyor agent against a server in this process.
func TestAgentCommands(t *testing.T) {
	t.Setenv("CONVEYOR_SERVER", "")
	t.Setenv("CONVEYOR_TOKEN", "")
	t.Setenv("CONVEYOR_AGENT_TOKEN", "")
	ctx, cancel := context.WithCancel(t.Context())
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	h := host.New(host.Options{})
	srv, err := server.New(server.Config{Listen: ln.Addr().String(), BaseURL: url, DataDir: t.TempDir(), Workers: -1,
		AgentPoll: 300 * time.Millisecond}, server.Deps{Store: st, Backends: server.Backends{Main: h, Host: h},
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := clientCommands()[args[0]].main(t.Context(), append(args[1:], "--server", url, "--token", admin), &out, &errb)
		if code != want {
			t.Fatalf("conveyor %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	out := run(0, "agent-token", "create", "--name", "box", "--labels", "gpu,linux", "--org", "1")
	m := regexp.MustCompile(`agent token \(shown once, stored hashed\): (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "agent 1: box (labels: gpu,linux)") {
		t.Fatalf("create:\n%s", out)
	}
	if out := run(1, "agent-token", "create", "--name", "other", "--org", "7"); !strings.Contains(out, "belongs to organisation 1") {
		t.Errorf("wrong --org: %s", out)
	}
	if out := run(0, "agent-token", "create", "--name", "bound", "--allow-labels", "self-hosted, EU"); !strings.Contains(out, "it may claim only these labels: self-hosted,eu") {
		t.Errorf("--allow-labels:\n%s", out)
	}
	if out := run(1, "agent-token", "create", "--name", "bound2", "--labels", "gpu", "--allow-labels", "eu"); !strings.Contains(out, "not among the allowed labels") {
		t.Errorf("--labels outside --allow-labels:\n%s", out)
	}
	if out := run(0, "agents"); !strings.Contains(out, "offline") || !strings.Contains(out, "never") {
		t.Errorf("agents before the agent ran:\n%s", out)
	}

	actx, stop := context.WithCancel(t.Context())
	agentDone := make(chan int, 1)
	var aout bytes.Buffer
	go func() {
		agentDone <- agentMain(actx, []string{"--server", url, "--token", m[1], "--backend", "host", "--labels", "gpu",
			"--capacity", "2", "--data", t.TempDir(), "--log-level", "error"}, &aout, io.Discard)
	}()
	waitUntil(t, "the agent to register", func() bool { return strings.Contains(run(0, "agents"), "idle") })
	if out := run(0, "agents"); !strings.Contains(out, "self-hosted") || !strings.Contains(out, ",gpu") || !strings.Contains(out, " 2 ") {
		t.Errorf("agents:\n%s", out)
	}
	if out := run(0, "agent", "drain", "1"); !strings.Contains(out, "draining") {
		t.Errorf("drain: %s", out)
	}
	if out := run(0, "agents"); !strings.Contains(out, "draining") {
		t.Errorf("agents while draining:\n%s", out)
	}
	run(0, "agent", "resume", "1")
	run(1, "agent", "drain", "99")
	stop() // SIGTERM
	select {
	case code := <-agentDone:
		if code != 0 || !strings.Contains(aout.String(), "serving "+url) {
			t.Errorf("agent: exit %d\n%s", code, aout.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop")
	}
	run(0, "agent-token", "revoke", "1")
	if out := run(0, "agents"); strings.Contains(out, "box") {
		t.Errorf("a revoked agent is listed:\n%s", out)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
