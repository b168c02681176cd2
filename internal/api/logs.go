package api

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// logPage is how many chunks one store read returns at most; a page also
// stops at store.LogReadBytes, so a reader holds about 1 MiB, however
// large the log.
const logPage = 64

// sseBuffer is how much SSE output is framed before it is written.
const sseBuffer = 32 << 10

// logs answers a job's output: all stored chunks as text/plain, or, with
// Accept: text/event-stream or ?follow=1, a Server-Sent Events stream that
// follows the job until it ends. {job} is the job id or its key.
func (a *server) logs(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	run, ok := a.runFromPath(w, r, tok)
	if !ok {
		return
	}
	job, err := a.jobOf(r, tok.OrgID, run)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %s of run %d", r.PathValue("job"), run.ID), err)
		return
	}
	q := r.URL.Query()
	after := int64(0)
	name, s := "after", q.Get("after")
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		name, s = "Last-Event-ID", h
	}
	if s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			a.fail(w, "", errs.E("", errs.Invalid, "%s %q is not a log sequence number", name, s))
			return
		}
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true" ||
		strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if follow {
		a.streamLog(w, r, tok.OrgID, job.ID, after)
		return
	}
	a.plainLog(w, r, tok.OrgID, job.ID, after)
}

func (a *server) jobOf(r *http.Request, orgID int64, run *store.Run) (*store.Job, error) {
	ref := r.PathValue("job")
	// Workflow job keys start with a letter or _, so a number is an id.
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		job, err := a.Store.GetJob(r.Context(), orgID, id)
		if err != nil {
			return nil, err
		}
		if job.RunID != run.ID {
			return nil, errs.E("", errs.NotFound, "job %d is not in run %d", id, run.ID)
		}
		return job, nil
	}
	jobs, err := a.Store.Jobs(r.Context(), orgID, run.ID)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if j.Key == ref {
			return j, nil
		}
	}
	return nil, errs.E("", errs.NotFound, "no job %q in run %d", ref, run.ID)
}

func (a *server) plainLog(w http.ResponseWriter, r *http.Request, orgID, jobID, after int64) {
	chunks, err := a.Store.ReadLog(r.Context(), orgID, jobID, after, logPage)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for {
		for _, c := range chunks {
			if _, err := w.Write(c.Data); err != nil {
				return
			}
			after = c.Seq
		}
		if store.LogPageEnd(chunks, logPage) {
			return
		}
		if chunks, err = a.Store.ReadLog(r.Context(), orgID, jobID, after, logPage); err != nil {
			// The status is sent: cutting the body short is all that is left.
			a.Log.Error("api: reading log", "job", jobID, "err", err)
			return
		}
	}
}

// streamLog writes chunks after the given sequence number as SSE events
// (id = seq), waking on the notifier, every Poll and every Heartbeat (a
// comment keeps proxies from closing an idle stream), and ends with an
// "end" event carrying the job's status once the job is terminal and every
// chunk is sent. A store error closes the stream; clients resume with
// Last-Event-ID.
func (a *server) streamLog(w http.ResponseWriter, r *http.Request, orgID, jobID, after int64) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout would cut long streams.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	bw := bufio.NewWriterSize(w, sseBuffer)
	poll := time.NewTicker(a.Poll)
	defer poll.Stop()
	beat := time.NewTicker(a.Heartbeat)
	defer beat.Stop()
	for {
		var wake <-chan struct{}
		if a.Notifier != nil {
			wake = a.Notifier.Wait(jobID) // before reading, so no change is missed
		}
		// The status is read before the chunks: when it is terminal, every
		// chunk was stored before it, so the reads below see them all.
		job, err := a.Store.GetJob(ctx, orgID, jobID)
		if err != nil {
			a.streamErr(r, jobID, err)
			return
		}
		var ok bool
		if after, ok = a.sendChunks(r, bw, rc, orgID, jobID, after); !ok {
			return
		}
		if store.Terminal(job.Status) {
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", job.Status)
			_ = rc.Flush()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		case <-beat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// sendChunks writes the chunks after seq after as SSE events, a page at a
// time, and returns the last seq sent; false: the stream is over (a store
// error, logged, or a client gone).
func (a *server) sendChunks(r *http.Request, bw *bufio.Writer, rc *http.ResponseController, orgID, jobID, after int64) (int64, bool) {
	for {
		chunks, err := a.Store.ReadLog(r.Context(), orgID, jobID, after, logPage)
		if err != nil {
			a.streamErr(r, jobID, err)
			return after, false
		}
		for _, c := range chunks {
			writeEvent(bw, c.Seq, c.Data)
			after = c.Seq
		}
		if len(chunks) > 0 && (bw.Flush() != nil || rc.Flush() != nil) {
			return after, false
		}
		if store.LogPageEnd(chunks, logPage) {
			return after, true
		}
	}
}

func (a *server) streamErr(r *http.Request, jobID int64, err error) {
	if r.Context().Err() == nil {
		a.Log.Error("api: following log", "job", jobID, "err", err)
	}
}

// writeEvent frames one chunk as an SSE event, line by line without
// copying the chunk. SSE ends a data line at CR, LF or CRLF, so each
// becomes a line break; the client joins data lines with LF. Write errors
// stay in w (a bufio.Writer reports them at Flush).
func writeEvent(w *bufio.Writer, seq int64, data []byte) {
	w.WriteString("id: ")
	w.WriteString(strconv.FormatInt(seq, 10))
	w.WriteByte('\n')
	for {
		i := bytes.IndexAny(data, "\r\n")
		w.WriteString("data: ")
		if i < 0 {
			w.Write(data)
			w.WriteByte('\n')
			break
		}
		w.Write(data[:i])
		w.WriteByte('\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	w.WriteByte('\n')
}
