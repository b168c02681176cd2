package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// logFollowers is how many clients read the large log at once.
const logFollowers = 10

// serverLogs: a host step prints -log-mb MB; ten clients follow its log
// live (SSE) while it is written, then ten more read the stored log
// (SSE from the start). The server's VmRSS is sampled every 20 ms; the
// floor is the same server's RSS idle before the run.
func serverLogs(h *harness) []row {
	mb := h.logMB
	// Numbered lines with varying numbers, which compress about as well
	// as a build's output (not one line repeated).
	step := fmt.Sprintf(`awk 'BEGIN { srand(7); for (i = 1; ; i++) printf "%%09d [build] step %%d: compiling pkg/%%x/%%x.go in %%.3f ms\n", i, i %% 17, int(rand() * 65536), int(rand() * 4096), rand() * 100 }' | head -c %d`, int64(mb)<<20)
	wf := "on: push\njobs:\n  big:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          " + step + "\n"
	srv := h.startServer("logs")
	defer srv.stop()
	r := h.dispatchRepo(srv, "octo/logs", wf)
	time.Sleep(2 * time.Second)
	idle := srv.rss()
	dbBefore, objBefore := dbSize(srv.data), dirSize(filepath.Join(srv.data, "cache", "store"))

	c := hookClient(2)
	defer c.CloseIdleConnections()
	runID := h.runOf(srv, r, h.pushEvent(c, r, "logs", 1))
	path := fmt.Sprintf("%s/api/runs/%d/jobs/big/logs?follow=1", srv.url, runID)

	t0 := time.Now()
	livePeak, liveBytes := h.followers(srv, path)
	live := time.Since(t0)
	written := srv.rss()
	// The server moves a finished run's log tail to the object store 10 s
	// after the run (every 5 s): measure once that has happened.
	time.Sleep(16 * time.Second)
	dbGrowth := dbSize(srv.data) - dbBefore
	objGrowth := dirSize(filepath.Join(srv.data, "cache", "store")) - objBefore
	t1 := time.Now()
	storedPeak, storedBytes := h.followers(srv, path)
	stored := time.Since(t1)
	want := int64(logFollowers) * int64(mb) << 20
	if liveBytes < want || storedBytes < want {
		h.fail("followers read %d and %d bytes of data, want at least %d each\n%s", liveBytes, storedBytes, want, srv.logTail())
	}
	size := fmt.Sprintf("%d MB", mb)
	return []row{
		{name: "server RSS, " + size + " log, 10 live followers", ours: fmtMB(livePeak), floor: fmtMB(idle),
			ratio: fmt.Sprintf("%.1fx", float64(livePeak)/float64(idle)), target: "< 100 MB", ok: okIf(livePeak < 100<<20),
			comment: fmt.Sprintf("peak VmRSS (sampled every 20 ms) while a host step printed %s and %d SSE clients followed it to the end (%s); floor: the same server idle before the run; %s after the run with no reader",
				size, logFollowers, fmtDur(live), fmtMB(written))},
		{name: "server RSS, stored " + size + " log, 10 readers", ours: fmtMB(storedPeak), floor: fmtMB(idle),
			ratio: fmt.Sprintf("%.1fx", float64(storedPeak)/float64(idle)), target: "< 100 MB", ok: okIf(storedPeak < 100<<20),
			comment: fmt.Sprintf("peak VmRSS while %d SSE clients read the finished log from the start at once (%s, %.0f MB/s in all)",
				logFollowers, fmtDur(stored), float64(storedBytes)/(1<<20)/stored.Seconds())},
		{name: "database growth, " + size + " log", ours: fmtMB(dbGrowth), floor: size, ratio: fmt.Sprintf("%.2fx", float64(dbGrowth)/float64(int64(mb)<<20)),
			target: "-", ok: "-", comment: fmt.Sprintf("size of conveyor.db 16 s after the run (the log moved to the object store) minus before it (the WAL, bounded by the checkpointer, was %s then); floor: the log's size", fmtMB(walSize(srv.data)))},
		{name: "object store growth, " + size + " log", ours: fmtMB(objGrowth), floor: size, ratio: fmt.Sprintf("%.2fx", float64(objGrowth)/float64(int64(mb)<<20)),
			target: "-", ok: "-", comment: "size of DATA/cache/store (the caches' object store, where the server keeps logs: zstd chunks in segment objects) after the run minus before it"},
	}
}

// runOf waits (up to 30 s) for the run of an event and returns its id.
func (h *harness) runOf(srv *serverProc, r dispatchRepo, eventID int64) int64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Runs []struct {
				ID      int64 `json:"id"`
				EventID int64 `json:"event_id"`
			} `json:"runs"`
		}
		srv.call("GET", fmt.Sprintf("/api/runs?repo=%d&limit=5", r.id), nil, http.StatusOK, &list)
		for _, run := range list.Runs {
			if run.EventID == eventID {
				return run.ID
			}
		}
		if time.Now().After(deadline) {
			h.fail("event %d: no run within 30 s\n%s", eventID, srv.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// followers has logFollowers clients read url to its end at once and
// returns the server's peak VmRSS meanwhile and the bytes they read.
func (h *harness) followers(srv *serverProc, url string) (peak, read int64) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, logFollowers)
	c := &http.Client{Timeout: 30 * time.Minute}
	for range logFollowers {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+srv.token)
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			total.Add(n)
			if err != nil || resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("follower: %d after %d bytes: %v", resp.StatusCode, n, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, srv.rss())
		select {
		case <-done:
			close(errs)
			if err := <-errs; err != nil {
				h.fail("%v\n%s", err, srv.logTail())
			}
			return peak, total.Load()
		case <-tick.C:
		}
	}
}

// dirSize is the size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// dbSize is the size of a server's SQLite database file.
func dbSize(data string) int64 {
	var n int64
	if fi, err := os.Stat(filepath.Join(data, "conveyor.db")); err == nil {
		n = fi.Size()
	}
	return n
}

// walSize is the size of a server's SQLite WAL file.
func walSize(data string) int64 {
	fi, err := os.Stat(filepath.Join(data, "conveyor.db-wal"))
	if err != nil {
		return 0
	}
	return fi.Size()
}
