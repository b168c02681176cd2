package actions

import (
	"path"
	"regexp"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Ref is a parsed remote uses: value.
type Ref struct {
	Owner, Repo string
	// Path is the folder of the action in the repository ("" for the
	// root), or the file of a reusable workflow.
	Path string
	// Version is what follows @: a tag, a branch or a commit SHA.
	Version string
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	shaRe  = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// Parse reads owner/repo[/path]@ref. It refuses what git or the cache
// could be tricked with: empty or dot-only names, .. in the path, a ref
// starting with '-' or holding characters git refs cannot hold.
func Parse(uses string) (Ref, error) {
	name, ver, ok := strings.Cut(uses, "@")
	if !ok || ver == "" {
		return Ref{}, errs.E("uses", errs.Invalid, "%q: a remote action needs a version: owner/repo[/path]@ref", uses)
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 {
		return Ref{}, errs.E("uses", errs.Invalid, "%q: want owner/repo[/path]@ref", uses)
	}
	for i, p := range parts {
		if i < 2 && !ValidName(p) {
			return Ref{}, errs.E("uses", errs.Invalid, "%q: %q is not a valid owner or repository name", uses, p)
		}
		if i >= 2 && (p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\\\x00")) {
			return Ref{}, errs.E("uses", errs.Invalid, "%q: the path inside the repository must not hold empty, . or .. parts", uses)
		}
	}
	if !validVersion(ver) {
		return Ref{}, errs.E("uses", errs.Invalid, "%q: %q is not a valid git ref", uses, ver)
	}
	return Ref{Owner: parts[0], Repo: parts[1], Path: strings.Join(parts[2:], "/"), Version: ver}, nil
}

// ValidName reports whether s can be an owner or repository name (as
// GitHub's: letters, digits, '-', '_', '.', not only dots).
func ValidName(s string) bool { return nameRe.MatchString(s) && strings.Trim(s, ".") != "" }

// validVersion accepts what git check-ref-format accepts for a branch or
// tag short name, as far as it matters here (no option-like refs, no
// control characters, no ref syntax).
func validVersion(v string) bool {
	if v == "" || v[0] == '-' || strings.HasSuffix(v, ".") || strings.HasSuffix(v, "/") || strings.HasPrefix(v, "/") ||
		strings.Contains(v, "..") || strings.Contains(v, "@{") || strings.Contains(v, "//") || strings.HasSuffix(v, ".lock") {
		return false
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	return true
}

// IsSHA reports whether the version is a full commit SHA (never moves).
func (r Ref) IsSHA() bool { return shaRe.MatchString(r.Version) }

// Repository is owner/repo.
func (r Ref) Repository() string { return r.Owner + "/" + r.Repo }

// Name is owner/repo[/path], the action's name without the version.
func (r Ref) Name() string {
	if r.Path == "" {
		return r.Repository()
	}
	return r.Repository() + "/" + r.Path
}

func (r Ref) String() string { return r.Name() + "@" + r.Version }

// IsWorkflow reports whether the ref names a reusable workflow
// (owner/repo/.github/workflows/x.yml@ref).
func (r Ref) IsWorkflow() bool {
	ext := path.Ext(r.Path)
	return strings.HasPrefix(r.Path, ".github/workflows/") && (ext == ".yml" || ext == ".yaml")
}

// key is the cache's folder for the repository: GitHub names are case
// insensitive, so one folder serves actions/Checkout and actions/checkout.
func (r Ref) key() string { return strings.ToLower(r.Owner) + "/" + strings.ToLower(r.Repo) }
