package web

import (
	"net/http"
	"net/url"
	"strconv"

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
	Roles   []string
	Admin   bool
	// NewToken is a token just made, shown this once.
	NewToken *api.TokenCreated
}

func (u *ui) orgSettings(w http.ResponseWriter, r *http.Request, s *sess) {
	u.showOrgSettings(w, r, s, nil)
}

// orgSettingsPost manages members and the caller's tokens.
func (u *ui) orgSettingsPost(w http.ResponseWriter, r *http.Request, s *sess) {
	f := r.PostForm
	name := url.PathEscape(f.Get("name"))
	var st int
	var err error
	switch r.PathValue("action") {
	case "add-member":
		st, err = u.call(r, s, "POST", "/api/users", api.UserInput{Name: f.Get("name"), Role: f.Get("role"), Password: f.Get("password")}, nil)
	case "set-role":
		st, err = u.call(r, s, "PUT", "/api/users/"+name+"/role", api.RoleInput{Role: f.Get("role")}, nil)
	case "remove-member":
		st, err = u.call(r, s, "DELETE", "/api/users/"+name, nil, nil)
	case "create-token":
		days, _ := strconv.Atoi(f.Get("days"))
		var out api.TokenCreated
		if st, err = u.call(r, s, "POST", "/api/tokens", api.TokenInput{Name: f.Get("name"), Scope: f.Get("scope"), ExpiresInDays: days}, &out); err == nil {
			u.showOrgSettings(w, r, s, &out)
			return
		}
	case "revoke-token":
		st, err = u.call(r, s, "DELETE", "/api/tokens/"+url.PathEscape(f.Get("id")), nil, nil)
	default:
		u.errorPage(w, r, s, http.StatusNotFound, "no such setting: "+r.PathValue("action"))
		return
	}
	if err != nil {
		u.errorPage(w, r, s, st, err.Error())
		return
	}
	http.Redirect(w, r, "/org", http.StatusSeeOther)
}

func (u *ui) showOrgSettings(w http.ResponseWriter, r *http.Request, s *sess, made *api.TokenCreated) {
	v := orgSettingsView{NewToken: made, Roles: []string{"viewer", "developer", "maintainer", "admin"},
		Admin: s.who.ServerAdmin || s.who.OrgRole == "admin"}
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
