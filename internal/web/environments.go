package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// envSettings is the environments and sandbox part of a repository's
// settings page.
type envSettings struct {
	Envs []api.Environment
	// Edit is the environment whose values fill the form (?env=name).
	Edit *api.Environment
	// CanEdit: the caller may change environments and the branch mapping
	// (maintainer+; protected environments need admin, which the API
	// checks); CanAdmin: the sandbox and the fork approval (admin).
	CanEdit, CanAdmin bool
	Policies          []string
}

// loadEnvSettings reads the repository's environments for the page.
func (u *ui) loadEnvSettings(r *http.Request, s *sess, v *repoSettingsView) {
	v.Env.CanEdit = s.rank() >= store.OrgMaintainer.Rank()
	v.Env.CanAdmin = s.rank() >= store.OrgAdmin.Rank()
	v.Env.Policies = []string{"open", "no-private", "none"}
	var envs api.EnvironmentList
	if _, err := u.call(r, s, "GET", "/api/repos/"+itoa(v.Repo.ID)+"/environments", nil, &envs); err != nil {
		v.Notes = append(v.Notes, "Environments: "+err.Error())
	}
	v.Env.Envs = envs.Items
	if name := r.URL.Query().Get("env"); name != "" {
		for i := range envs.Items {
			if strings.EqualFold(envs.Items[i].Name, name) {
				v.Env.Edit = &envs.Items[i]
			}
		}
	}
}

// envPost handles the environment and sandbox forms: it returns the API
// call to make, or false when action is not one of them.
func envPost(id int64, action string, f url.Values) (method, path string, in any, ok bool, err error) {
	repo := "/api/repos/" + itoa(id)
	switch action {
	case "environment":
		in, err := environmentInput(f)
		return "PUT", repo + "/environments/" + url.PathEscape(strings.TrimSpace(f.Get("name"))), in, true, err
	case "delete-environment":
		return "DELETE", repo + "/environments/" + url.PathEscape(f.Get("name")), nil, true, nil
	case "sandbox":
		policy, runtime, skip := f.Get("network_policy"), strings.TrimSpace(f.Get("runtime")), f.Get("skip_fork_approval") == "on"
		return "PATCH", repo, api.RepoUpdate{NetworkPolicy: &policy, Runtime: &runtime, SkipForkApproval: &skip}, true, nil
	case "env-map":
		m, err := envMapping(f.Get("rules"), f.Get("other"))
		return "PATCH", repo, api.RepoUpdate{EnvMap: &m}, true, err
	}
	return "", "", nil, false, nil
}

// environmentInput reads the environment form.
func environmentInput(f url.Values) (api.EnvironmentInput, error) {
	in := api.EnvironmentInput{Branches: listOf(f.Get("branches")), Tags: listOf(f.Get("tags")),
		PreventSelfReview: f.Get("prevent_self_review") == "on"}
	if strings.TrimSpace(f.Get("name")) == "" {
		return in, errs.E("environment", errs.Invalid, "a name is required")
	}
	if w := strings.TrimSpace(f.Get("wait_minutes")); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil {
			return in, errs.E("environment", errs.Invalid, "wait timer %q: a number of minutes", w)
		}
		in.WaitMinutes = n
	}
	for _, x := range listOf(f.Get("reviewers")) {
		if role, ok := strings.CutPrefix(x, "role:"); ok {
			in.Reviewers = append(in.Reviewers, api.Reviewer{Role: strings.TrimSpace(role)})
		} else {
			in.Reviewers = append(in.Reviewers, api.Reviewer{User: x})
		}
	}
	return in, nil
}

// envMapping reads the branch mapping's lines "pattern = environment".
func envMapping(rules, other string) (store.EnvMapping, error) {
	m := store.EnvMapping{Other: strings.TrimSpace(other)}
	for i, line := range strings.Split(rules, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		branch, env, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(branch) == "" || strings.TrimSpace(env) == "" {
			return m, errs.E("branch mapping", errs.Invalid, "line %d %q: want branch-pattern = environment", i+1, line)
		}
		m.Rules = append(m.Rules, store.EnvRule{Branch: strings.TrimSpace(branch), Environment: strings.TrimSpace(env)})
	}
	return m, nil
}

// listOf splits a comma- or line-separated list.
func listOf(s string) []string {
	var out []string
	for _, x := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// reviewerList is reviewers as the form reads them ("alice, role:maintainer").
func reviewerList(rs []api.Reviewer) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.User != "" {
			out = append(out, r.User)
		} else if r.Role != "" {
			out = append(out, "role:"+r.Role)
		}
	}
	return strings.Join(out, ", ")
}

// mappingLines is a branch mapping's rules as the form reads them.
func mappingLines(m *store.EnvMapping) string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range m.Rules {
		fmt.Fprintf(&b, "%s = %s\n", r.Branch, r.Environment)
	}
	return b.String()
}
