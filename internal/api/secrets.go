package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// MaxSecretSize caps a secret's or variable's value (GitHub's limit).
const MaxSecretSize = 48 << 10

// devRead lists the names of secrets and the variables: developers write
// the workflows that use them. Changing them needs settings (maintainer),
// and an organisation-level one an admin (see docs/security.md).
var devRead = access{kind: userToken, role: store.OrgDeveloper, scope: store.RoleRead}

func secretRoutes() []route {
	return []route{
		{"GET", "/api/secrets", devRead, 200, nil, SecretList{}, (*server).listSecrets},
		{"PUT", "/api/secrets/{name}", settings, 200, SecretInput{}, Secret{}, (*server).putSecret},
		{"DELETE", "/api/secrets/{name}", settings, 204, nil, nil, (*server).deleteSecret},
		{"GET", "/api/vars", devRead, 200, nil, SecretList{}, (*server).listVars},
		{"PUT", "/api/vars/{name}", settings, 200, SecretInput{}, Secret{}, (*server).putVar},
		{"DELETE", "/api/vars/{name}", settings, 204, nil, nil, (*server).deleteVar},
	}
}

// SecretInput sets a secret's or variable's value.
type SecretInput struct {
	Value string `json:"value"`
}

// Secret is a stored secret or variable. Value is a variable's; a
// secret's value is never answered.
type Secret struct {
	Name string `json:"name"`
	// Level is org, repo or env.
	Level     string    `json:"level"`
	Repo      string    `json:"repo,omitempty"`
	RepoID    int64     `json:"repo_id,omitempty"`
	Env       string    `json:"env,omitempty"`
	Value     string    `json:"value,omitempty"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by"`
}

// SecretList lists secrets (names only) or variables.
type SecretList struct {
	Items []Secret `json:"items"`
}

var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkSecretName applies GitHub's rules: letters, digits and
// underscores, not starting with a digit nor with GITHUB_; names are
// case-insensitive and stored in upper case.
func checkSecretName(name string) (string, error) {
	up := strings.ToUpper(name)
	switch {
	case len(name) > 200 || !secretName.MatchString(name):
		return "", errs.E("", errs.Invalid, "name %q: only letters, digits and _ (not first), at most 200", name)
	case strings.HasPrefix(up, "GITHUB_"):
		return "", errs.E("", errs.Invalid, "name %q: the GITHUB_ prefix is reserved", name)
	}
	return up, nil
}

func checkEnvName(env string) error {
	if len(env) > 255 || strings.TrimSpace(env) != env || strings.ContainsFunc(env, unicode.IsControl) {
		return errs.E("", errs.Invalid, "environment %q: at most 255 characters, no control characters or surrounding spaces", env)
	}
	return nil
}

// secretStore returns the store, or answers 503 without one.
func (a *server) secretStore(w http.ResponseWriter) (store.Secrets, bool) {
	if a.Secrets == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not store secrets")
		return nil, false
	}
	return a.Secrets, true
}

// scopeOf reads ?repo=ID|OWNER/NAME&env=E or ?org=true. With need set
// one of them is required (changes name their scope explicitly).
func (a *server) scopeOf(r *http.Request, orgID int64, need bool) (store.Scope, *store.Repo, error) {
	q := r.URL.Query()
	sc := store.Scope{OrgID: orgID, Env: q.Get("env")}
	repo, org := q.Get("repo"), q.Get("org")
	if err := checkEnvName(sc.Env); err != nil {
		return sc, nil, err
	}
	switch {
	case repo != "" && org != "":
		return sc, nil, errs.E("", errs.Invalid, "give repo or org, not both")
	case org != "" && org != "true":
		return sc, nil, errs.E("", errs.Invalid, "org=%q: only org=true", org)
	case org != "" && sc.Env != "":
		return sc, nil, errs.E("", errs.Invalid, "an environment belongs to a repository: give repo with env")
	case repo == "" && (need && org == "" || sc.Env != ""):
		return sc, nil, errs.E("", errs.Invalid, "say where: ?repo=ID or OWNER/NAME (and &env=NAME), or ?org=true")
	case repo == "":
		return sc, nil, nil
	}
	var rp *store.Repo
	var err error
	if strings.Contains(repo, "/") {
		rp, err = a.Store.RepoByName(r.Context(), orgID, repo)
	} else {
		var id int64
		if id, err = parseID("repo", repo); err == nil {
			rp, err = a.Store.GetRepo(r.Context(), orgID, id)
		}
	}
	if errs.Is(err, errs.NotFound) {
		return sc, nil, errs.E("", errs.NotFound, "repo %s: not found", repo)
	}
	if err != nil {
		return sc, nil, err
	}
	sc.RepoID = rp.ID
	if sc.Env != "" && a.Environments != nil {
		// Environment names compare case aside (as on GitHub): values go
		// with the environment's own spelling, which jobs look up.
		if e, err := a.Environments.GetEnvironment(r.Context(), orgID, rp.ID, sc.Env); err == nil {
			sc.Env = e.Name
		}
	}
	return sc, rp, nil
}

// mayChange refuses an organisation-level change to a caller below admin:
// it reaches every repository's jobs. Protected environments (issue 11,
// part 4) will need an admin too.
func mayChange(r *http.Request, sc store.Scope) error {
	c := callerOf(r)
	if sc.Level() == "org" && c.effectiveRole().Rank() < store.OrgAdmin.Rank() {
		return errs.E("", errs.Forbidden, "user %s: organisation-level secrets and variables need role admin", c.user)
	}
	return nil
}

func describe(kind, name string, sc store.Scope, repo *store.Repo) string {
	s := kind + " " + name
	switch {
	case repo == nil:
		return s + " (organisation)"
	case sc.Env != "":
		return fmt.Sprintf("%s (repo %s, environment %s)", s, repo.Name, sc.Env)
	}
	return fmt.Sprintf("%s (repo %s)", s, repo.Name)
}

func (a *server) putValue(w http.ResponseWriter, r *http.Request, tok *store.Token, kind string) {
	st, ok := a.secretStore(w)
	if !ok {
		return
	}
	sc, repo, err := a.scopeOf(r, tok.OrgID, true)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	var in SecretInput
	name, err := checkSecretName(r.PathValue("name"))
	if err == nil {
		err = decode(r, &in, false)
	}
	switch {
	case err != nil:
	case in.Value == "":
		err = errs.E("", errs.Invalid, "value: must not be empty")
	case len(in.Value) > MaxSecretSize:
		err = errs.E("", errs.TooLarge, "value: larger than %d bytes", MaxSecretSize)
	default:
		err = mayChange(r, sc)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	x := &store.Secret{Kind: kind, Scope: sc, Name: name, Value: in.Value, UpdatedBy: callerOf(r).user}
	err = a.audited(r, tok.OrgID, kind+".set", fixed(describe(kind, name, sc, repo), ""),
		func(ctx context.Context) error { return st.PutSecret(ctx, x) })
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := toSecret(x, repo)
	if kind == store.KindSecret {
		out.Value = ""
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *server) deleteValue(w http.ResponseWriter, r *http.Request, tok *store.Token, kind string) {
	st, ok := a.secretStore(w)
	if !ok {
		return
	}
	sc, repo, err := a.scopeOf(r, tok.OrgID, true)
	var name string
	if err == nil {
		name, err = checkSecretName(r.PathValue("name"))
	}
	if err == nil {
		err = mayChange(r, sc)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	err = a.audited(r, tok.OrgID, kind+".delete", fixed(describe(kind, name, sc, repo), ""),
		func(ctx context.Context) error { return st.DeleteSecret(ctx, kind, sc, name) })
	if err != nil {
		a.fail(w, describe(kind, name, sc, repo), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *server) listValues(w http.ResponseWriter, r *http.Request, tok *store.Token, kind string) {
	st, ok := a.secretStore(w)
	if !ok {
		return
	}
	sc, repo, err := a.scopeOf(r, tok.OrgID, false)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	xs, err := st.ListSecrets(r.Context(), tok.OrgID, store.SecretFilter{Kind: kind, RepoID: sc.RepoID, Env: sc.Env})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	names := map[int64]*store.Repo{}
	if repo != nil {
		names[repo.ID] = repo
	}
	out := SecretList{Items: []Secret{}}
	for _, x := range xs {
		rp := names[x.Scope.RepoID]
		if rp == nil && x.Scope.RepoID != 0 {
			if rp, err = a.Store.GetRepo(r.Context(), tok.OrgID, x.Scope.RepoID); err != nil {
				rp = &store.Repo{ID: x.Scope.RepoID} // removed since: shown by id
			}
			names[rp.ID] = rp
		}
		out.Items = append(out.Items, toSecret(x, rp))
	}
	writeJSON(w, http.StatusOK, out)
}

func toSecret(x *store.Secret, repo *store.Repo) Secret {
	s := Secret{Name: x.Name, Level: x.Scope.Level(), Env: x.Scope.Env, Value: x.Value, Updated: x.Updated, UpdatedBy: x.UpdatedBy}
	if repo != nil {
		s.Repo, s.RepoID = repo.Name, repo.ID
	}
	if x.Kind == store.KindSecret {
		s.Value = ""
	}
	return s
}

func (a *server) listSecrets(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.listValues(w, r, tok, store.KindSecret)
}

func (a *server) putSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.putValue(w, r, tok, store.KindSecret)
}

func (a *server) deleteSecret(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.deleteValue(w, r, tok, store.KindSecret)
}

func (a *server) listVars(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.listValues(w, r, tok, store.KindVar)
}

func (a *server) putVar(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.putValue(w, r, tok, store.KindVar)
}

func (a *server) deleteVar(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.deleteValue(w, r, tok, store.KindVar)
}
