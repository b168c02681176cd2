package web

import (
	"net/http"
	"net/url"

	"github.com/conveyor-ci/conveyor/internal/api"
)

type repoSettingsView struct {
	Repo    api.Repo
	Secrets []api.Secret
	Vars    []api.Secret
	// Errors of the reads a role may not make (e.g. a viewer's secrets).
	Notes []string
	// NewSecret is a webhook secret just made, shown this once.
	NewSecret string
}

func (u *ui) repoSettings(w http.ResponseWriter, r *http.Request, s *sess) {
	u.showRepoSettings(w, r, s, "")
}

func (u *ui) showRepoSettings(w http.ResponseWriter, r *http.Request, s *sess, newSecret string) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	v := repoSettingsView{NewSecret: newSecret}
	if st, err := u.call(r, s, "GET", "/api/repos/"+itoa(id), nil, &v.Repo); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	var secrets, vars api.SecretList
	if _, err := u.call(r, s, "GET", "/api/secrets?repo="+itoa(id), nil, &secrets); err != nil {
		v.Notes = append(v.Notes, "Secrets: "+err.Error())
	}
	if _, err := u.call(r, s, "GET", "/api/vars?repo="+itoa(id), nil, &vars); err != nil {
		v.Notes = append(v.Notes, "Variables: "+err.Error())
	}
	v.Secrets, v.Vars = secrets.Items, vars.Items
	u.render(w, r, http.StatusOK, "repo_settings", page{Title: v.Repo.Name + " settings", S: s, Data: v})
}

// repoSettingsPost sets or deletes a repository's secret or variable.
func (u *ui) repoSettingsPost(w http.ResponseWriter, r *http.Request, s *sess) {
	id, ok := u.pathInt(w, r, s, "id")
	if !ok {
		return
	}
	if r.PathValue("action") == "hook-secret" {
		var out api.RepoCreated
		if st, err := u.call(r, s, "POST", "/api/repos/"+itoa(id)+"/hook-secret", nil, &out); err != nil {
			u.errorPage(w, r, s, st, err.Error())
			return
		}
		u.showRepoSettings(w, r, s, out.Secret)
		return
	}
	name := r.PostForm.Get("name")
	q := "?repo=" + itoa(id)
	var method, path string
	var in any
	switch r.PathValue("action") {
	case "secret":
		method, path, in = "PUT", "/api/secrets/"+url.PathEscape(name)+q, api.SecretInput{Value: r.PostForm.Get("value")}
	case "delete-secret":
		method, path = "DELETE", "/api/secrets/"+url.PathEscape(name)+q
	case "var":
		method, path, in = "PUT", "/api/vars/"+url.PathEscape(name)+q, api.SecretInput{Value: r.PostForm.Get("value")}
	case "delete-var":
		method, path = "DELETE", "/api/vars/"+url.PathEscape(name)+q
	default:
		u.errorPage(w, r, s, http.StatusNotFound, "no such setting: "+r.PathValue("action"))
		return
	}
	if name == "" {
		u.errorPage(w, r, s, http.StatusBadRequest, "a name is required")
		return
	}
	if st, err := u.call(r, s, method, path, in, nil); err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	http.Redirect(w, r, "/repos/"+itoa(id)+"/settings", http.StatusSeeOther)
}

type orgSettingsView struct {
	Members []api.Member
	Tokens  []api.TokenInfo
	Usage   *api.Usage
	Audit   []api.AuditEntry
	Notes   []string
}

func (u *ui) orgSettings(w http.ResponseWriter, r *http.Request, s *sess) {
	var v orgSettingsView
	var members api.MemberList
	var toks api.TokenList
	var usage api.Usage
	var audit api.AuditList
	note := func(what string, err error) {
		if err != nil {
			v.Notes = append(v.Notes, what+": "+err.Error())
		}
	}
	_, err := u.call(r, s, "GET", "/api/users", nil, &members)
	note("Members", err)
	_, err = u.call(r, s, "GET", "/api/tokens", nil, &toks)
	note("Tokens", err)
	if _, err = u.call(r, s, "GET", "/api/usage", nil, &usage); err == nil {
		v.Usage = &usage
	}
	note("Usage", err)
	_, err = u.call(r, s, "GET", "/api/audit?limit=50", nil, &audit)
	note("Audit log", err)
	v.Members, v.Tokens, v.Audit = members.Members, toks.Tokens, audit.Entries
	u.render(w, r, http.StatusOK, "org_settings", page{Title: "Organisation", S: s, Data: v})
}
