package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// A server newer than the agent assigns a job in a contract version the
// agent does not speak: the agent runs nothing and hands the job back at
// once, saying why. It tells the server its own version when it
// registers.
func TestAgentHandsBackAnAssignmentOfAnUnknownContract(t *testing.T) {
	var mu sync.Mutex
	var registered api.AgentRegister
	released := make(chan string, 1)
	leased := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/api/agent/register":
			_ = json.NewDecoder(r.Body).Decode(&registered)
			_ = json.NewEncoder(w).Encode(api.AgentRegistered{AgentID: 1, Name: "a", LeaseTTLMS: 30000, HeartbeatMS: 10000,
				PollTimeoutMS: 200, Contract: jobspec.Version + 1})
		case r.URL.Path == "/api/agent/lease" && !leased:
			leased = true
			if got := r.Header.Get(api.ContractHeader); got != strconv.Itoa(jobspec.Version) {
				t.Errorf("lease request says contract %q, want %d", got, jobspec.Version)
			}
			_ = json.NewEncoder(w).Encode(api.AgentAssignment{Version: jobspec.Version + 1, JobID: 7, LeaseToken: 70, Key: "build",
				Run: jobspec.Run{ID: 1, Repository: "octo/repo", WorkflowYAML: "not for this agent"}})
		case r.URL.Path == "/api/agent/lease":
			time.Sleep(100 * time.Millisecond)
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/api/agent/jobs/7/release" && r.Header.Get(api.LeaseHeader) == "70":
			b, _ := io.ReadAll(r.Body)
			released <- string(b)
			w.WriteHeader(http.StatusNoContent)
		default:
			t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
			http.Error(w, "unexpected", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	h := host.New(host.Options{})
	a, err := New(Config{Server: srv.URL, Token: "cva_t", Env: jobrun.Env{Backend: h, Host: h}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case reason := <-released:
		if !strings.Contains(reason, fmt.Sprintf("the server sent job contract version %d", jobspec.Version+1)) || !strings.Contains(reason, "upgrade the agent") {
			t.Errorf("release reason %s", reason)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the job was not handed back")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if registered.Contract != jobspec.Version {
		t.Errorf("registered contract %d, want %d", registered.Contract, jobspec.Version)
	}
}
