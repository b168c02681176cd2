package store

import (
	"context"
	"time"
)

// Kinds of stored job values: secrets (sealed at rest, never shown) and
// variables (plain configuration, shown to developers).
const (
	KindSecret = "secret"
	KindVar    = "var"
)

// Scope is where a secret or variable applies: the organisation
// (RepoID 0, Env ""), one repository (Env ""), or one environment of a
// repository. For a job, the narrowest scope holding a name wins:
// environment, then repository, then organisation.
type Scope struct {
	OrgID  int64
	RepoID int64
	Env    string
}

// Level names the scope: "org", "repo" or "env".
func (s Scope) Level() string {
	switch {
	case s.RepoID == 0:
		return "org"
	case s.Env == "":
		return "repo"
	}
	return "env"
}

// Secret is a stored secret or variable. Value is only read back for
// variables and for jobs (JobValues); listing secrets leaves it empty.
type Secret struct {
	Kind  string
	Scope Scope
	Name  string
	Value string
	// Updated and UpdatedBy are when and by whom it was last set.
	Updated   time.Time
	UpdatedBy string
}

// SecretFilter selects what ListSecrets lists. RepoID 0 lists every
// scope of the organisation; a repository lists its own, its
// environments' (all when Env is "", else only Env's) and the
// organisation's.
type SecretFilter struct {
	Kind   string
	RepoID int64
	Env    string
}

// Secrets stores secrets and variables, secrets sealed with the server's
// key (the scope and name are the sealing's additional data, so a value
// moved to another row does not open).
type Secrets interface {
	// PutSecret creates or replaces s (by kind, scope and name) and sets
	// its Updated. NotFound when the repository is not the organisation's.
	PutSecret(ctx context.Context, s *Secret) error
	// DeleteSecret removes one (NotFound when there is none).
	DeleteSecret(ctx context.Context, kind string, sc Scope, name string) error
	// ListSecrets lists names (and variables' values) by scope, then name.
	ListSecrets(ctx context.Context, orgID int64, f SecretFilter) ([]*Secret, error)
	// JobValues are the secrets and variables a job of repoID in
	// environment env (may be "") sees: the narrowest scope wins.
	JobValues(ctx context.Context, orgID, repoID int64, env string) (secrets, vars map[string]string, err error)
}

// JobToken is a job's GITHUB_TOKEN: random, stored as its SHA-256, valid
// only while its job runs under the lease it was made for, and until
// Expires at the latest.
type JobToken struct {
	Hash                []byte
	OrgID, RunID, JobID int64
	// Lease is the job's fencing token when the token was made.
	Lease int64
	// ReadRun: the job's permissions let it read its run (logs,
	// artifacts).
	ReadRun bool
	Expires time.Time
}

// JobTokens stores the jobs' tokens.
type JobTokens interface {
	// CreateJobToken stores t (and deletes expired tokens).
	CreateJobToken(ctx context.Context, t *JobToken) error
	// JobTokenByHash returns the token with hash while it is valid: not
	// expired, its job running under the same lease. NotFound otherwise.
	JobTokenByHash(ctx context.Context, hash []byte) (*JobToken, error)
	// RevokeJobTokens deletes a job's tokens (when it ends).
	RevokeJobTokens(ctx context.Context, jobID int64) error
}
