package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestLogFollowerAcrossMoveToObjects: with the logs in an object store, a
// follower of a job writing 11 MB gets every line over SSE while the tail
// moves to segment objects as it fills and the rest moves after the run;
// the log read afterwards, from the objects, is the same.
func TestLogFollowerAcrossMoveToObjects(t *testing.T) {
	bucket, err := cache.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flow := "on: push\njobs:\n  talk:\n    runs-on: ubuntu-latest\n    steps:\n" +
		"      - run: head -c 8000000 /dev/urandom | base64; echo done-marker\n"
	h := newHarness(t, harnessOpts{objects: bucket, cfg: Config{Sweep: Sweep{MoveLogsEvery: 50 * time.Millisecond, MoveLogsAfter: time.Millisecond}},
		files: map[string]string{".github/workflows/talk.yml": flow}})
	h.hook("push", h.push("main"), "1")
	var runID int64
	waitFor(t, 20*time.Second, "run", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 1 {
			runID = runs[0].ID
		}
		return runID != 0
	})
	get := func(accept string) *http.Response {
		req, _ := http.NewRequest("GET", h.url+"/api/runs/"+itoa(runID)+"/jobs/talk/logs", nil)
		req.Header.Set("Authorization", "Bearer "+h.token)
		req.Header.Set("Accept", accept)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t.Cleanup(cancel)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	isB64 := func(s string) bool { return len(s) == 76 && !strings.ContainsAny(s, " :") }
	followed, ended, marker := 0, "", false
	sc := bufio.NewScanner(get("text/event-stream").Body)
	event := ""
	for ended == "" && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "end":
			ended = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "data: "):
			d := strings.TrimPrefix(line, "data: ")
			if isB64(d) || isB64(lastField(d)) {
				followed++
			}
			marker = marker || strings.Contains(d, "done-marker")
		case line == "":
			event = ""
		}
	}
	if ended != store.StatusSuccess || !marker {
		t.Fatalf("follower: end %q, marker seen %v", ended, marker)
	}
	waitFor(t, 30*time.Second, "the log's move to the object store", func() bool {
		var n int
		names, _ := bucket.List(context.Background(), "logs/")
		n = len(names)
		jobs := h.jobs(runID)
		chunks, _ := h.st.ReadLog(context.Background(), 1, jobs["talk"].ID, 0, 1)
		return n >= 2 && len(chunks) == 1 && moved(h, jobs["talk"].ID)
	})
	body, err := io.ReadAll(get("text/plain").Body)
	if err != nil {
		t.Fatal(err)
	}
	plain := 0
	for _, l := range strings.Split(string(body), "\n") {
		if isB64(l) || isB64(lastField(l)) {
			plain++
		}
	}
	if plain < 100_000 || plain != followed || !strings.Contains(string(body), "done-marker") {
		t.Fatalf("after the move the log has %d base64 lines (marker %v), the follower saw %d", plain,
			strings.Contains(string(body), "done-marker"), followed)
	}
}

// lastField is a log line's text after any prefix (a timestamp).
func lastField(l string) string {
	if i := strings.LastIndexByte(l, ' '); i >= 0 {
		return l[i+1:]
	}
	return l
}

// moved reports whether MoveLogs has nothing left of the job to move.
func moved(h *harness, jobID int64) bool {
	n, err := h.st.MoveLogs(context.Background(), time.Now())
	return err == nil && n == 0
}
