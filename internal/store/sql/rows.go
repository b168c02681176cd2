package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// now is the store's clock, truncated to what a row keeps so that values
// returned by a write equal the values read back later.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// us stores a time as unix microseconds; the zero time is 0.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// tm reads a time stored by us.
func tm(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// blob never passes nil: a nil []byte would be NULL in a NOT NULL column.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// encode stores a map or slice as JSON text; decode reads it back, leaving
// empty values nil.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null" // maps of strings and string slices always marshal
	}
	return string(b)
}

func decodeMap(s string) map[string]string {
	var m map[string]string
	if s != "" && s != "null" && s != "{}" {
		json.Unmarshal([]byte(s), &m) // written by encode
	}
	return m
}

func decodeList(s string) []string {
	var l []string
	if s != "" && s != "null" && s != "[]" {
		json.Unmarshal([]byte(s), &l) // written by encode
	}
	return l
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const repoCols = `id, org_id, name, url, forge, secret, branch, allow_sha1, status_token, api_url,
	clone_user, clone_password, created, run_test_deliveries, env_map, skip_fork_approval,
	network_policy, runtime`

func scanRepo(sc scanner) (*store.Repo, error) {
	var r store.Repo
	var created int64
	var envMap string
	err := sc.Scan(&r.ID, &r.OrgID, &r.Name, &r.URL, &r.Forge, &r.Secret, &r.Branch, &r.AllowSHA1,
		&r.StatusToken, &r.APIURL, &r.CloneUser, &r.ClonePassword, &created, &r.RunTestDeliveries, &envMap, &r.SkipForkApproval,
		&r.NetworkPolicy, &r.Runtime)
	if err == nil && envMap != "" {
		err = json.Unmarshal([]byte(envMap), &r.EnvMap)
	}
	r.Created = tm(created)
	return &r, err
}

// eventCols are an event's columns; its headers and body are in
// event_payloads (payloadCols).
const eventCols = `id, org_id, repo_id, source, forge, name, delivery_id, body_hash, received, state, error, attempts`

const payloadCols = `headers, body`

// eventDest is where eventCols scan to.
func eventDest(e *store.Event, received *int64) []any {
	return []any{&e.ID, &e.OrgID, &e.RepoID, &e.Source, &e.Forge, &e.Name, &e.DeliveryID, &e.BodyHash,
		received, &e.State, &e.Error, &e.Attempts}
}

func scanEvent(sc scanner) (*store.Event, error) {
	var e store.Event
	var received int64
	err := sc.Scan(eventDest(&e, &received)...)
	e.Received = tm(received)
	return &e, err
}

// scanEventPayload scans eventCols, then payloadCols.
func scanEventPayload(sc scanner) (*store.Event, error) {
	var e store.Event
	var received int64
	var headers string
	err := sc.Scan(append(eventDest(&e, &received), &headers, &e.Body)...)
	e.Headers, e.Received = decodeMap(headers), tm(received)
	return &e, err
}

const runCols = `id, org_id, repo_id, event_id, number, workflow, name, event, ref, sha, trigger_source,
	status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress, attempt, rerun_of,
	created, started, finished, error`

func scanRun(sc scanner) (*store.Run, error) {
	var r store.Run
	var inputs string
	var created, started, finished int64
	err := sc.Scan(&r.ID, &r.OrgID, &r.RepoID, &r.EventID, &r.Number, &r.Workflow, &r.Name, &r.Event,
		&r.Ref, &r.SHA, &r.Trigger, &r.Status, &inputs, &r.EventJSON, &r.WorkflowYAML, &r.ConcurrencyGroup,
		&r.CancelInProgress, &r.Attempt, &r.RerunOf, &created, &started, &finished, &r.Error)
	r.Inputs = decodeMap(inputs)
	r.Created, r.Started, r.Finished = tm(created), tm(started), tm(finished)
	return &r, err
}

const jobCols = `id, run_id, org_id, repo_id, job_key, name, needs, status, priority, labels, backend,
	attempt, max_attempts, outputs, results, error, lease_owner, lease_token, lease_expires,
	cancel_requested, reused_from, created, queued, started, finished, concurrency_group, cancel_in_progress, held, build_ms,
	deploy, wait_until`

func scanJob(sc scanner) (*store.Job, error) {
	var j store.Job
	var needs, labels, outputs string
	var deploy string
	var expires, created, queued, started, finished, held, buildMS, waitUntil int64
	err := sc.Scan(&j.ID, &j.RunID, &j.OrgID, &j.RepoID, &j.Key, &j.Name, &needs, &j.Status, &j.Priority,
		&labels, &j.Backend, &j.Attempt, &j.MaxAttempts, &outputs, &j.Results, &j.Error, &j.LeaseOwner,
		&j.LeaseToken, &expires, &j.CancelRequested, &j.ReusedFrom, &created, &queued, &started, &finished,
		&j.ConcurrencyGroup, &j.CancelInProgress, &held, &buildMS, &deploy, &waitUntil)
	if err == nil && deploy != "" {
		j.Deploy = &store.Deployment{}
		if json.Unmarshal([]byte(deploy), j.Deploy) == nil {
			j.Deploy.WaitUntil = tm(waitUntil)
		}
	}
	j.Build = time.Duration(buildMS) * time.Millisecond
	j.GroupWait = j.Status == store.StatusQueued && (held == heldGroup || held == heldAdmit)
	j.Needs, j.Labels, j.Outputs = decodeList(needs), decodeList(labels), decodeMap(outputs)
	j.LeaseExpires, j.Created, j.Queued, j.Started, j.Finished = tm(expires), tm(created), tm(queued), tm(started), tm(finished)
	return &j, err
}

const statusCols = `id, run_id, repo_id, sha, context, state, description, target_url, attempts,
	next_attempt, last_error, done`

func scanStatus(sc scanner) (*store.StatusReport, error) {
	var r store.StatusReport
	var next int64
	err := sc.Scan(&r.ID, &r.RunID, &r.RepoID, &r.SHA, &r.Context, &r.State, &r.Description, &r.TargetURL,
		&r.Attempts, &next, &r.LastError, &r.Done)
	r.NextAttempt = tm(next)
	return &r, err
}

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
