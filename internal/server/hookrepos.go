package server

import (
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// hookRepoTTL is how long a webhook's repository is served from memory:
// long enough to spare a database query per webhook under load, short
// enough that a change made elsewhere (another replica) is seen soon.
const hookRepoTTL = 2 * time.Second

// hookRepos caches the repositories webhooks are addressed to, by id (the
// webhook path names the repository by id alone; the signature check
// authenticates). A signature that fails against a cached entry is checked
// again against the stored repository, so a new secret is accepted at
// once; the previous secret may pass for up to hookRepoTTL. Entries are
// shared: read-only.
type hookRepos struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[int64]hookRepo
}

type hookRepo struct {
	r  *store.Repo
	at time.Time
}

func newHookRepos(ttl time.Duration, max int) *hookRepos {
	return &hookRepos{ttl: ttl, max: max, m: map[int64]hookRepo{}}
}

// get returns the cached repository id, if fresh.
func (c *hookRepos) get(id int64, now time.Time) *store.Repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.at) >= c.ttl {
		return nil
	}
	return e.r
}

func (c *hookRepos) put(r *store.Repo, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for id, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, id)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m) // many live repositories: start over rather than grow
		}
	}
	c.m[r.ID] = hookRepo{r: r, at: now}
}

func (c *hookRepos) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
