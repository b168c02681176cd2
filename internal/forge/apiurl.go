package forge

import (
	"net/url"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/event"
)

// Public API roots.
const (
	GitHubAPI = "https://api.github.com"
	GitLabAPI = "https://gitlab.com/api/v4"
)

// DefaultAPIURL returns the REST API root for a repository of forgeName at
// repoURL (clone or web URL, https or scp-like ssh): api.github.com for
// github.com (GitHub Enterprise: https://host/api/v3), gitlab.com/api/v4
// (self-managed: host/api/v4), and host/api/v1 for Gitea. It returns "" when
// it cannot tell (unknown forge, Gitea without a repository URL). A forge
// served under a sub-path cannot be told from the repository URL; configure
// its API URL instead.
func DefaultAPIURL(forgeName, repoURL string) string {
	f, err := canonical("forge.DefaultAPIURL", forgeName)
	if err != nil {
		return ""
	}
	scheme, host := hostOf(repoURL)
	switch f {
	case event.GitHub:
		if host == "" || host == "github.com" || host == "www.github.com" {
			return GitHubAPI
		}
		return scheme + "://" + host + "/api/v3"
	case event.GitLab:
		if host == "" || host == "gitlab.com" || host == "www.gitlab.com" {
			return GitLabAPI
		}
		return scheme + "://" + host + "/api/v4"
	}
	if host == "" {
		return ""
	}
	return scheme + "://" + host + "/api/v1"
}

// hostOf returns the web scheme and host (with port, for http(s) URLs) of a
// repository URL; ssh and git URLs are assumed served over https.
func hostOf(repoURL string) (scheme, host string) {
	s := strings.TrimSpace(repoURL)
	if s == "" {
		return "", ""
	}
	if !strings.Contains(s, "://") { // scp-like: git@host:owner/repo.git
		if _, after, ok := strings.Cut(s, "@"); ok {
			s = after
		}
		h, _, _ := strings.Cut(s, ":")
		if h == "" || strings.ContainsAny(h, "/ ") {
			return "", ""
		}
		return "https", strings.ToLower(h)
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "", ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Scheme, strings.ToLower(u.Host)
	}
	return "https", strings.ToLower(u.Hostname())
}
