package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	dispatchRuns = 30 // one-job runs, one at a time
	chainRuns    = 10 // runs of a 5-job needs: chain
	chainLen     = 5
)

// apiJob and apiRun are the parts of GET /api/runs/{id} the case reads.
type apiJob struct {
	Key      string     `json:"key"`
	Status   string     `json:"status"`
	Error    string     `json:"error"`
	Queued   *time.Time `json:"queued"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
}

type apiRun struct {
	Run struct {
		ID      int64  `json:"id"`
		EventID int64  `json:"event_id"`
		Status  string `json:"status"`
		Error   string `json:"error"`
	} `json:"run"`
	Jobs []apiJob `json:"jobs"`
}

func terminal(status string) bool {
	switch status {
	case "success", "failure", "cancelled", "skipped", "error":
		return true
	}
	return false
}

// dispatchRepo is a registered repository with one workflow.
type dispatchRepo struct {
	id         int64
	name, dir  string
	head, hook string
}

const dispatchSecret = "bench-dispatch-secret"

func (h *harness) dispatchRepo(srv *serverProc, name, workflow string) dispatchRepo {
	dir, head := h.gitRepo(map[string]string{".github/workflows/ci.yml": workflow})
	id := srv.addRepo(dir, name, dispatchSecret)
	return dispatchRepo{id: id, name: name, dir: dir, head: head, hook: fmt.Sprintf("%s/hooks/%d", srv.url, id)}
}

// pushEvent posts push number seq to r's webhook (delivery kind-seq) and
// returns the ID of the event the server accepted.
func (h *harness) pushEvent(c *http.Client, r dispatchRepo, kind string, seq int64) int64 {
	p := push{seq: seq, repo: r.name, repoDir: r.dir, head: r.head}
	status, body, err := postHook(c, r.hook, dispatchSecret, p.body(), deliveryID(kind, seq))
	if err != nil || status != http.StatusAccepted {
		h.fail("webhook: %d %s %v", status, body, err)
	}
	var acc struct {
		EventID int64 `json:"event_id"`
	}
	if err := json.Unmarshal(body, &acc); err != nil {
		h.fail("webhook answer %s: %v", body, err)
	}
	return acc.EventID
}

// runOnce posts one push and waits for its run to finish (polling the API
// every 5 ms). It returns the run and the time from posting to seeing it
// finished.
func (h *harness) runOnce(srv *serverProc, c *http.Client, r dispatchRepo, seq int64) (apiRun, time.Duration) {
	t0 := time.Now()
	eventID := h.pushEvent(c, r, "dispatch", seq)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct {
			Runs []struct {
				ID      int64  `json:"id"`
				EventID int64  `json:"event_id"`
				Status  string `json:"status"`
			} `json:"runs"`
		}
		srv.call("GET", fmt.Sprintf("/api/runs?repo=%d&limit=5", r.id), nil, http.StatusOK, &list)
		for _, run := range list.Runs {
			if run.EventID == eventID && terminal(run.Status) {
				took := time.Since(t0)
				var detail apiRun
				srv.call("GET", fmt.Sprintf("/api/runs/%d", run.ID), nil, http.StatusOK, &detail)
				if detail.Run.Status != "success" {
					var why []string
					for _, j := range detail.Jobs {
						why = append(why, j.Key+": "+j.Status+" "+j.Error)
					}
					h.fail("run %d: %s %s [%s]\n%s", run.ID, detail.Run.Status, detail.Run.Error, strings.Join(why, "; "), srv.logTail())
				}
				return detail, took
			}
		}
		if time.Now().After(deadline) {
			h.fail("event %d: no finished run within 60 s\n%s", eventID, srv.logTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chainWorkflow is a workflow of n jobs j1 <- j2 <- ... <- jn (needs:),
// each with one `true` step.
func chainWorkflow(n int) string {
	var chain strings.Builder
	chain.WriteString("on: push\njobs:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&chain, "  j%d:\n    runs-on: ubuntu-latest\n", i)
		if i > 1 {
			fmt.Fprintf(&chain, "    needs: j%d\n", i-1)
		}
		chain.WriteString("    steps:\n      - run: \"true\"\n")
	}
	return chain.String()
}

// singleJobRuns runs dispatchRuns 1-job runs of r one at a time. It returns
// each job's dispatch latency read from the growth of histogram metric
// since last (when the run added exactly one observation), its queued -> started time
// from the API, and the time from each post to seeing its run finished.
func (h *harness) singleJobRuns(srv *serverProc, c *http.Client, r dispatchRepo, metric string, last histogram, seq *int64) (exact, leased, e2e []time.Duration) {
	for range dispatchRuns {
		*seq++
		run, took := h.runOnce(srv, c, r, *seq)
		e2e = append(e2e, took)
		// Runs go one at a time: the histogram's sum grew by this job's latency.
		now := srv.metricsHistogram(metric)
		if d := now.minus(last); d.count == 1 {
			exact = append(exact, secs(d.sum))
		}
		last = now
		j := run.Jobs[0]
		leased = append(leased, j.Started.Sub(*j.Queued))
		if h.verbose {
			fmt.Fprintf(os.Stderr, "  run %d: queued->leased %s, webhook->finished seen %s\n", run.Run.ID, fmtDur(leased[len(leased)-1]), fmtDur(took))
		}
	}
	return exact, leased, e2e
}

// chainGaps runs chainRuns runs of r, a chainLen-job chain. It returns the
// gaps from each job's finish to the next one's start, as the API shows
// them, and the time from each post to seeing its run finished.
func (h *harness) chainGaps(srv *serverProc, c *http.Client, r dispatchRepo, seq *int64) (gaps, e2e []time.Duration) {
	for range chainRuns {
		*seq++
		run, took := h.runOnce(srv, c, r, *seq)
		e2e = append(e2e, took)
		byKey := map[string]apiJob{}
		for _, j := range run.Jobs {
			byKey[j.Key] = j
		}
		for i := 2; i <= chainLen; i++ {
			prev, next := byKey[fmt.Sprintf("j%d", i-1)], byKey[fmt.Sprintf("j%d", i)]
			if prev.Finished == nil || next.Started == nil {
				h.fail("run %d: job times missing: %+v", run.Run.ID, run.Jobs)
			}
			gaps = append(gaps, next.Started.Sub(*prev.Finished))
		}
	}
	return gaps, e2e
}

// serverDispatch: job ready to first step started on the host backend,
// read from the server's conveyor_dispatch_latency_seconds histogram, and
// the gap between jobs of a needs: chain, read from the API.
func serverDispatch(h *harness) []row {
	one := "on: push\njobs:\n  one:\n    runs-on: ubuntu-latest\n    steps:\n      - run: \"true\"\n"
	srv := h.startServer("dispatch")
	defer srv.stop()
	a := h.dispatchRepo(srv, "octo/one", one)
	b := h.dispatchRepo(srv, "octo/chain", chainWorkflow(chainLen))
	c := hookClient(2)
	defer c.CloseIdleConnections()
	const metric = "conveyor_dispatch_latency_seconds"

	// Warm-up: the first event of a repository clones its mirror.
	h.runOnce(srv, c, a, 1)
	h.runOnce(srv, c, b, 2)
	seq := int64(10)

	before := srv.metricsHistogram(metric)
	exact, leased, e2e := h.singleJobRuns(srv, c, a, metric, before, &seq)
	mid := srv.metricsHistogram(metric)
	gaps, chainE2E := h.chainGaps(srv, c, b, &seq)
	after := srv.metricsHistogram(metric)
	fork := median(h.timings("sh -c true", func() time.Duration { return h.rawHost("true") })[0])

	single := mid.minus(before)
	p50, lo, hi := single.quantile(0.5)
	if len(exact) != dispatchRuns {
		h.fail("%d of %d runs added exactly one observation to %s", len(exact), dispatchRuns, metric)
	}
	ours := percentile(exact, 50)
	chained := after.minus(mid)
	cp50, clo, chi := chained.quantile(0.5)
	return []row{
		{name: "dispatch p50, 1-job runs", ours: fmtMs(ours), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(ours, fork),
			target: "< 20 ms", ok: okIf(ours < 20*time.Millisecond),
			comment: fmt.Sprintf("%s of %d jobs (1 job, 1 `true` step, host backend, pushes to main, runs one at a time): each job's value is the growth of the histogram's _sum over its run; "+
				"p90 %s, min %s; the histogram alone gives p50 %s (interpolated in bucket %s-%s); queued->leased (API) p50 %s; webhook posted -> run seen finished p50 %s; floor: fork/exec of sh -c true",
				metric, len(exact), fmtDur(percentile(exact, 90)), fmtDur(percentile(exact, 0)), fmtDur(secs(p50)), fmtDur(secs(lo)), fmtDur(secs(hi)),
				fmtDur(percentile(leased, 50)), fmtDur(percentile(e2e, 50)))},
		{name: "dispatch p50, 5-job chain", ours: fmtMs(secs(cp50)), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(secs(cp50), fork),
			target: "< 20 ms", ok: okIf(secs(cp50) < 20*time.Millisecond),
			comment: fmt.Sprintf("the same histogram over the %.0f jobs of %d runs of j1 <- j2 <- ... <- j5 (needs:), bucket %s-%s, mean %s",
				chained.count, chainRuns, fmtDur(secs(clo)), fmtDur(secs(chi)), fmtDur(secs(chained.sum/chained.count)))},
		{name: "chain: job finished -> next leased", ours: fmtDur(percentile(gaps, 50)), floor: "-", ratio: "-", target: "-", ok: "-",
			comment: fmt.Sprintf("p50 of %d gaps, job k's finished to job k+1's started as GET /api/runs/{id} shows them (p90 %s); whole 5-job run, webhook to seen finished, p50 %s",
				len(gaps), fmtDur(percentile(gaps, 90)), fmtDur(percentile(chainE2E, 50)))},
	}
}
