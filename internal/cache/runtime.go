package cache

import "sync"

// Runtime hands jobs the env of GitHub's cache protocol, one token per
// job (it satisfies exec.CacheRuntime).
type Runtime struct {
	tokens *Tokens
	// HostURL is the service's base URL for jobs on the host;
	// ContainerURL for jobs in containers ("" : HostURL).
	hostURL, containerURL string

	mu   sync.Mutex
	jobs map[string]jobToken
}

type jobToken struct {
	token  string
	revoke func()
}

// NewRuntime issues tokens from tokens for a service reachable at hostURL
// (and containerURL from containers).
func NewRuntime(tokens *Tokens, hostURL, containerURL string) *Runtime {
	if containerURL == "" {
		containerURL = hostURL
	}
	return &Runtime{tokens: tokens, hostURL: trimSlash(hostURL), containerURL: trimSlash(containerURL), jobs: map[string]jobToken{}}
}

func trimSlash(u string) string {
	for len(u) > 0 && u[len(u)-1] == '/' {
		u = u[:len(u)-1]
	}
	return u
}

// JobEnv returns the job's cache env, issuing its token on the first call.
// Both protocols are offered: clients of @actions/cache 4.x take v2
// (ACTIONS_CACHE_SERVICE_V2 with ACTIONS_RESULTS_URL), older ones and
// GHES-looking set-ups v1 (ACTIONS_CACHE_URL).
func (r *Runtime) JobEnv(job string, scope Scope, container bool) map[string]string {
	r.mu.Lock()
	jt, ok := r.jobs[job]
	if !ok {
		jt.token, jt.revoke = r.tokens.Issue(scope)
		r.jobs[job] = jt
	}
	r.mu.Unlock()
	base := r.hostURL
	if container {
		base = r.containerURL
	}
	return map[string]string{
		"ACTIONS_CACHE_URL":        base + "/",
		"ACTIONS_RESULTS_URL":      base + "/",
		"ACTIONS_RUNTIME_TOKEN":    jt.token,
		"ACTIONS_CACHE_SERVICE_V2": "true",
	}
}

// Release revokes the job's token.
func (r *Runtime) Release(job string) {
	r.mu.Lock()
	jt, ok := r.jobs[job]
	delete(r.jobs, job)
	r.mu.Unlock()
	if ok {
		jt.revoke()
	}
}
