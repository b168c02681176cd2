package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cron"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// cronTick is how often due schedules are checked; GitHub's finest
// schedule is every 5 minutes, so firing within 10 s is on time.
const cronTick = 10 * time.Second

// schedule is one cron line of one workflow on a repository's default
// branch.
type schedule struct {
	repo *store.Repo
	file string
	spec string
	s    cron.Schedule
}

func (c schedule) key() string { return fmt.Sprintf("%d:%s:%s", c.repo.ID, c.file, c.spec) }

// cronState holds the schedules the cron loop fires, per repository. The
// loop re-reads every repository now and then (fetching each); a push to a
// default branch replaces only its repository's entry, from the workflow
// files processing the push already read (see noteSchedules).
type cronState struct {
	mu     sync.Mutex
	byRepo map[int64][]schedule
	// by is the id of the push event that set a repository's entry, so a
	// push processed late never replaces what a newer one set.
	by map[int64]int64
	// sums are digests of the workflow files byRepo was read from: a
	// storm of pushes of the same files parses them once.
	sums map[int64][32]byte
}

func newCronState() *cronState {
	return &cronState{byRepo: map[int64][]schedule{}, by: map[int64]int64{}, sums: map[int64][32]byte{}}
}

// all is every schedule, by repository id.
func (c *cronState) all() []schedule {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]int64, 0, len(c.byRepo))
	for id := range c.byRepo {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []schedule
	for _, id := range ids {
		out = append(out, c.byRepo[id]...)
	}
	return out
}

// cronLoop fires on: schedule entries. The fired scheduled time is stored
// with the event in one transaction (compare-and-set), so a schedule fires
// once across restarts and replicas. Catch-up rule (see package cron):
// after downtime only the latest missed time fires, if it is within
// Config.CronCatchUp.
func (s *Server) cronLoop(ctx context.Context) {
	loaded := time.Time{}
	for {
		// The full re-read also catches pushes processed by other replicas.
		if loaded.IsZero() || time.Since(loaded) > 5*time.Minute || s.takeScheduleRefresh() {
			s.loadSchedules(ctx)
			loaded = time.Now()
		}
		for _, sc := range s.crons.all() {
			s.fireDue(ctx, sc, s.cfg.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(cronTick):
		case <-s.wake.schedule:
		}
	}
}

// refreshSchedules makes the cron loop re-read every repository (a
// repository was added).
func (s *Server) refreshSchedules() {
	s.wake.scheduleDirty.Store(true)
	wake(s.wake.schedule)
}

func (s *Server) takeScheduleRefresh() bool { return s.wake.scheduleDirty.Swap(false) }

// noteSchedules replaces repo's schedules with those of files, the
// workflow files at the commit that push event eventID made the head of
// the default branch. No git runs: processing the push read them already.
func (s *Server) noteSchedules(repo *store.Repo, eventID int64, files map[string][]byte) {
	sum := filesDigest(files)
	c := s.crons
	c.mu.Lock()
	if eventID < c.by[repo.ID] {
		c.mu.Unlock()
		return
	}
	if old, ok := c.sums[repo.ID]; ok && old == sum {
		c.by[repo.ID] = eventID // the same files: the same schedules
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	scheds := s.schedulesOf(repo, files)
	c.mu.Lock()
	if eventID < c.by[repo.ID] {
		c.mu.Unlock()
		return
	}
	c.by[repo.ID] = eventID
	c.byRepo[repo.ID] = scheds
	c.sums[repo.ID] = sum
	c.mu.Unlock()
	wake(s.wake.schedule) // a new schedule's first sighting is its baseline: take it now
}

// loadSchedules re-reads the schedules of every repository at the head of
// its default branch (after a fetch). A repository that cannot be read
// keeps its schedules, and one a push updated meanwhile keeps the push's.
func (s *Server) loadSchedules(ctx context.Context) {
	repos, err := s.store.AllRepos(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cron: listing repositories", "err", err)
		}
		return
	}
	c := s.crons
	c.mu.Lock()
	startBy := maps.Clone(c.by)
	c.mu.Unlock()
	fresh := map[int64][]schedule{}
	for _, r := range repos {
		key := repoKey(r)
		if err := s.src.git.Sync(ctx, key, r.URL, creds(r)); err != nil {
			s.log.Warn("cron: fetching repository", "repo", r.Name, "err", err)
			continue
		}
		sha, _, err := s.src.git.Resolve(ctx, key, r.Branch)
		if err != nil {
			continue
		}
		files, err := s.src.git.ReadFiles(ctx, key, sha, workflowDirs...)
		if err != nil {
			continue
		}
		fresh[r.ID] = s.schedulesOf(r, files)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[int64][]schedule, len(repos))
	for _, r := range repos {
		sc, ok := fresh[r.ID]
		if !ok || c.by[r.ID] != startBy[r.ID] {
			sc, ok = c.byRepo[r.ID]
		} else {
			delete(c.sums, r.ID) // read at the head, not from a push's files
		}
		if ok {
			next[r.ID] = sc
		}
	}
	c.byRepo = next
}

// schedulesOf lists the on: schedule lines of repo's workflow files.
func (s *Server) schedulesOf(r *store.Repo, files map[string][]byte) []schedule {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []schedule{}
	for _, name := range names {
		wf, probs := workflow.Parse(files[name], name)
		if len(probs) > 0 {
			continue
		}
		t := wf.Trigger("schedule")
		if t == nil {
			continue
		}
		for _, spec := range t.Cron {
			cs, err := cron.Parse(spec)
			if err != nil {
				s.log.Warn("cron: bad schedule", "repo", r.Name, "workflow", name, "cron", spec, "err", err)
				continue
			}
			out = append(out, schedule{repo: r, file: name, spec: spec, s: cs})
		}
	}
	return out
}

// fireDue fires sc's due times, if any.
func (s *Server) fireDue(ctx context.Context, sc schedule, now time.Time) {
	key := sc.key()
	last, err := s.store.CronLast(ctx, key)
	if err != nil {
		return
	}
	// First sighting (no last) starts from now; see cron.Due.
	due := cron.Due(sc.s, last, now, s.cfg.CronCatchUp)
	if due.Skipped > 0 {
		s.log.Warn("cron: schedules missed during downtime were skipped", "repo", sc.repo.Name, "workflow", sc.file, "cron", sc.spec, "skipped", due.Skipped)
	}
	if due.Fire.IsZero() {
		if due.Last.After(last) {
			_, _ = s.store.FireCron(ctx, key, due.Last, nil)
		}
		return
	}
	at := due.Fire
	ev := &event.Event{Name: "schedule", Ref: "refs/heads/" + sc.repo.Branch, Schedule: sc.spec, Sender: "conveyor",
		Repository: event.Repository{FullName: sc.repo.Name, CloneURL: sc.repo.URL, DefaultBranch: sc.repo.Branch}}
	payload := map[string]any{"schedule": sc.spec, "workflow": sc.file, "repository": map[string]any{"full_name": sc.repo.Name}}
	sev, err := internalEvent(sc.repo, "cron", ev, payload, fmt.Sprintf("cron:%s:%d", key, at.Unix()))
	if err != nil {
		return
	}
	ok, err := s.store.FireCron(ctx, key, at, sev)
	if err != nil {
		s.log.Error("cron: firing", "key", key, "err", err)
		return
	}
	if ok {
		s.log.Info("cron fired", "repo", sc.repo.Name, "workflow", sc.file, "cron", sc.spec, "at", at)
		s.wakeEvents()
	}
}

// filesDigest is a digest of workflow files, names and contents.
func filesDigest(files map[string][]byte) [32]byte {
	names := slices.Sorted(maps.Keys(files))
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%d:%s%d:", len(n), n, len(files[n]))
		h.Write(files[n])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
