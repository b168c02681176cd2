package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Logs writes a job's output to w; job is the job id or its key. Without
// follow it writes what is stored and returns. With follow it streams the
// output until the job ends, reconnecting after a dropped connection and
// resuming after the last chunk received (Last-Event-ID), so nothing is
// written twice or lost.
func (c *Client) Logs(ctx context.Context, runID int64, job string, follow bool, w io.Writer) error {
	_, err := c.logs(ctx, runID, job, follow, w)
	return err
}

// FollowLogs is Logs with follow that also returns the job's final status.
func (c *Client) FollowLogs(ctx context.Context, runID int64, job string, w io.Writer) (status string, err error) {
	return c.logs(ctx, runID, job, true, w)
}

func (c *Client) logs(ctx context.Context, runID int64, job string, follow bool, w io.Writer) (string, error) {
	path := fmt.Sprintf("/api/runs/%d/jobs/%s/logs", runID, url.PathEscape(job))
	if !follow {
		resp, err := c.send(ctx, "GET", path, nil, "text/plain", nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(w, resp.Body); err != nil {
			return "", errs.E("", errs.Unavailable, "reading the log: %v", err)
		}
		return "", nil
	}
	var last int64
	failures := 0
	for {
		before := last
		status, err := c.stream(ctx, path, &last, w)
		if err == nil {
			return status, nil
		}
		if ctx.Err() != nil {
			return "", errs.Wrap("", errs.Canceled, ctx.Err())
		}
		if !retryable(err) {
			return "", err
		}
		if last != before {
			failures = 0 // the connection made progress: a fresh drop
		}
		failures++
		if failures > c.maxRetries {
			return "", err
		}
		wait := c.retryBase << min(failures-1, 5)
		select {
		case <-ctx.Done():
			return "", errs.Wrap("", errs.Canceled, ctx.Err())
		case <-time.After(min(wait, 5*time.Second)):
		}
	}
}

// retryable says whether a failed stream is worth resuming: dropped
// connections and unavailable servers are; refusals are not.
func retryable(err error) bool {
	switch errs.KindOf(err) {
	case errs.Unavailable, errs.Timeout, errs.Other:
		return true
	}
	return false
}

// errDropped is a stream that ended without its end event.
var errDropped = errs.E("", errs.Unavailable, "log stream ended before the job did")

// stream reads one SSE connection, writing each chunk's data to w and
// recording its id in last; it returns the job's status at the end event.
func (c *Client) stream(ctx context.Context, path string, last *int64, w io.Writer) (string, error) {
	hdr := http.Header{}
	if *last > 0 {
		hdr.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	resp, err := c.send(ctx, "GET", path, nil, "text/event-stream", hdr)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return "", errs.E("", errs.Invalid, "log stream: server answered %q, not text/event-stream", ct)
	}
	r := bufio.NewReader(resp.Body)
	var event, id string
	var data []string
	hasData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return "", errDropped
			}
			return "", errs.E("", errs.Unavailable, "log stream: %v", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // dispatch the event
			if event == "end" {
				return strings.Join(data, "\n"), nil
			}
			if hasData && (event == "" || event == "message") {
				if _, err := io.WriteString(w, strings.Join(data, "\n")); err != nil {
					return "", errs.Wrap("", errs.Canceled, err) // our writer failed: stop
				}
			}
			if id != "" {
				if n, err := strconv.ParseInt(id, 10, 64); err == nil {
					*last = n
				}
			}
			event, id, data, hasData = "", "", data[:0], false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (heartbeat)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data, hasData = append(data, value), true
		case "id":
			id = value
		}
	}
}
