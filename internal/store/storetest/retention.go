package storetest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var retentionTests = []test{
	{"RetentionSettings", testRetentionSettings},
	{"RetentionSweep", testRetentionSweep},
}

func days(d int) *int { return &d }

func testRetentionSettings(t *testing.T, e *env) {
	if r, err := e.s.GetRetention(e.ctx, e.org.ID, 0); err != nil || r != (store.Retention{}) {
		t.Errorf("never set: %+v, %v", r, err)
	}
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{RunsDays: days(90), LogsDays: days(30)}))
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{RunsDays: days(60), ArtifactsDays: days(0)}))
	r, err := e.s.GetRetention(e.ctx, e.org.ID, 0)
	e.must(err)
	if r.RunsDays == nil || *r.RunsDays != 60 || r.LogsDays != nil || r.ArtifactsDays == nil || *r.ArtifactsDays != 0 {
		t.Errorf("org retention = %+v", r)
	}
	e.must(e.s.SetRetention(e.ctx, e.org.ID, e.repo.ID, store.Retention{LogsDays: days(3)}))
	if r, err := e.s.GetRetention(e.ctx, e.org.ID, e.repo.ID); err != nil || r.LogsDays == nil || *r.LogsDays != 3 || r.RunsDays != nil {
		t.Errorf("repo retention = %+v, %v", r, err)
	}
	wantKind(t, e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{RunsDays: days(-1)}), errs.Invalid, "negative days")
	testCacheRetentions(t, e)
	other := e.newOrg("other")
	wantKind(t, e.s.SetRetention(e.ctx, other.ID, e.repo.ID, store.Retention{RunsDays: days(1)}), errs.NotFound,
		"another organisation's repository")
	_, err = e.s.GetRetention(e.ctx, other.ID, e.repo.ID)
	wantKind(t, err, errs.NotFound, "another organisation's repository")
}

// finishedRun is a finished one-job run of repo with a log of chunks
// chunks and an artifact of its own retention-days.
func (e *env) finishedRun(repo *store.Repo, chunks, artifactDays int) (*store.Run, *store.Lease) {
	e.t.Helper()
	run := e.newRun(repo, nil, job("a"))
	l := e.leaseKey("a")
	for range chunks {
		_, err := e.s.AppendLog(e.ctx, l.Job.ID, []byte(strings.Repeat("output\n", 100)))
		e.must(err)
	}
	e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: repo.OrgID, RunID: run.ID, Name: "dist", Job: "a",
		RetentionDays: artifactDays}, false, bytes.NewReader(make([]byte, 3<<20))))
	e.complete(l, store.StatusSuccess)
	return run, l
}

// processedEvents accepts evs, received now, claims and finishes them
// without a run, and returns them as claimed.
func (e *env) processedEvents(evs ...*store.Event) []*store.Event {
	e.t.Helper()
	for _, ev := range evs {
		ev.Received = time.Now()
	}
	e.accept(evs...)
	claimed, err := e.s.ClaimEvents(e.ctx, "w", 10, time.Minute)
	e.must(err)
	for _, ev := range claimed {
		_, err := e.s.FinishEvent(e.ctx, ev.ID, "w", nil)
		e.must(err)
	}
	if len(claimed) != len(evs) {
		e.t.Fatalf("claimed %d events, want %d", len(claimed), len(evs))
	}
	return claimed
}

// logLen is the number of log chunks stored for a job.
func (e *env) logLen(orgID, jobID int64) int {
	e.t.Helper()
	cs, err := e.s.ReadLog(e.ctx, orgID, jobID, 0, 10000)
	e.must(err)
	return len(cs)
}

// artifactCount is the number of artifacts stored for a run.
func (e *env) artifactCount(orgID, runID int64) int {
	e.t.Helper()
	as, err := e.s.ListArtifacts(e.ctx, orgID, runID)
	e.must(err)
	return len(as)
}

// testRetentionSweep: logs, artifacts (by setting and by their own
// retention-days), runs and sent commit statuses go when due, in that
// order, a repository's setting over its organisation's; runs of an
// organisation without settings stay.
func testRetentionSweep(t *testing.T, e *env) {
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{RunsDays: days(30), LogsDays: days(7)}))
	strict := e.newRepo(e.org.ID, "acme/strict")
	e.must(e.s.SetRetention(e.ctx, e.org.ID, strict.ID, store.Retention{ArtifactsDays: days(1), RunsDays: days(10)}))
	other := e.newOrg("forever")
	forever := e.newRepo(other.ID, "forever/app")

	run, l := e.finishedRun(e.repo, 1200, 2) // more chunks than one batch
	srun, sl := e.finishedRun(strict, 3, 0)
	frun, fl := e.finishedRun(forever, 3, 0)
	// Two processed events that made no run: one of the organisation
	// (runs kept 30 days), one of the organisation without settings.
	claimed := e.processedEvents(event(e.repo, "d-old", `{"a":1}`), event(forever, "d-forever", `{"b":2}`))
	sent := e.statuses()
	for _, r := range sent {
		e.must(e.s.StatusSent(e.ctx, r.ID, "", time.Time{}, false))
	}
	now := time.Now()
	sweep := func(after time.Duration, want store.Swept) {
		t.Helper()
		got, err := e.s.Sweep(e.ctx, now.Add(after), time.Hour)
		e.must(err)
		if got != want {
			t.Errorf("sweep at +%s: %+v, want %+v", after, got, want)
		}
	}
	day := 24 * time.Hour
	sweep(0, store.Swept{})
	if e.logLen(e.org.ID, l.Job.ID) != 1200 || e.artifactCount(e.org.ID, run.ID) != 1 {
		t.Fatal("nothing is due yet, but something went")
	}
	// Day 3: strict's artifact (1 day) and the artifact's own 2 days; the
	// statuses done an hour ago: each run's result, sent, and its pending
	// report, superseded unsent; not the logs (7 days).
	sweep(3*day, store.Swept{Artifacts: 2, Statuses: 2 * int64(len(sent))})
	if e.artifactCount(e.org.ID, run.ID) != 0 || e.artifactCount(e.org.ID, srun.ID) != 0 || e.artifactCount(other.ID, frun.ID) != 1 {
		t.Error("day 3: the wrong artifacts went")
	}
	// Day 8: logs of the organisation's repositories, strict's too (it
	// follows the organisation for logs).
	sweep(8*day, store.Swept{LogChunks: 1203})
	if e.logLen(e.org.ID, l.Job.ID) != 0 || e.logLen(e.org.ID, sl.Job.ID) != 0 || e.logLen(other.ID, fl.Job.ID) != 3 {
		t.Error("day 8: the wrong logs went")
	}
	// Day 11: strict's run (10 days); day 31: the other one, and the event.
	sweep(11*day, store.Swept{Runs: 1})
	_, err := e.s.GetRun(e.ctx, e.org.ID, srun.ID)
	wantKind(t, err, errs.NotFound, "strict's run after 10 days")
	e.getRun(run.ID)
	sweep(31*day, store.Swept{Runs: 1, Events: 1})
	_, err = e.s.GetRun(e.ctx, e.org.ID, run.ID)
	wantKind(t, err, errs.NotFound, "the run after 30 days")
	_, err = e.s.GetJob(e.ctx, e.org.ID, l.Job.ID)
	wantKind(t, err, errs.NotFound, "the job of the run after 30 days")
	_, err = e.s.GetEvent(e.ctx, e.org.ID, claimed[0].ID)
	wantKind(t, err, errs.NotFound, "the event after 30 days")
	// The organisation without settings keeps everything, forever.
	sweep(10000*day, store.Swept{})
	if _, err := e.s.GetEvent(e.ctx, other.ID, claimed[1].ID); err != nil {
		t.Errorf("the event of the organisation without retention: %v", err)
	}
	if _, err := e.s.GetRun(e.ctx, other.ID, frun.ID); err != nil || e.logLen(other.ID, fl.Job.ID) != 3 || e.artifactCount(other.ID, frun.ID) != 1 {
		t.Error("an organisation without retention lost history")
	}
}

// testCacheRetentions: caches follow a repository's caches setting, else
// its organisation's; repositories with neither are not listed.
func testCacheRetentions(t *testing.T, e *env) {
	list, err := e.s.CacheRetentions(e.ctx)
	e.must(err)
	if len(list) != 0 {
		t.Errorf("no caches setting anywhere: %+v", list)
	}
	second := e.newRepo(e.org.ID, "acme/second")
	other := e.newOrg("caches-other")
	e.newRepo(other.ID, "other/app")
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{RunsDays: days(60), CachesDays: days(7)}))
	e.must(e.s.SetRetention(e.ctx, e.org.ID, second.ID, store.Retention{CachesDays: days(2)}))
	if r, err := e.s.GetRetention(e.ctx, e.org.ID, second.ID); err != nil || r.CachesDays == nil || *r.CachesDays != 2 {
		t.Errorf("repo caches retention = %+v, %v", r, err)
	}
	list, err = e.s.CacheRetentions(e.ctx)
	e.must(err)
	got := map[string]int{}
	for _, c := range list {
		got[c.Repo] = c.Days
	}
	if len(got) != 2 || got[e.repo.Name] != 7 || got["acme/second"] != 2 {
		t.Errorf("CacheRetentions = %+v, want %s 7 days and acme/second 2", list, e.repo.Name)
	}
}
