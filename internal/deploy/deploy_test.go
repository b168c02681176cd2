package deploy

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func TestAllows(t *testing.T) {
	p := store.Protection{Branches: []string{"main", "release/*"}, Tags: []string{"v*"}}
	for _, c := range []struct {
		ref  string
		want string // "" allowed, else part of the error
	}{
		{"refs/heads/main", ""},
		{"refs/heads/release/1.0", ""},
		{"refs/heads/release/1.0/x", `Branch "release/1.0/x" is not allowed to deploy to production`},
		{"refs/heads/feature", `Branch "feature" is not allowed`},
		{"refs/tags/v1.2", ""},
		{"refs/tags/main", `Tag "main" is not allowed`},
		{"refs/pull/7/merge", `ref "refs/pull/7/merge" is not allowed`},
	} {
		err := Allows("production", p, c.ref)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want allowed", c.ref, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errs.Is(err, errs.Forbidden)):
			t.Errorf("%s: %v, want %q", c.ref, err, c.want)
		}
	}
	if err := Allows("dev", store.Protection{}, "refs/pull/1/merge"); err != nil {
		t.Errorf("no policy refuses: %v", err)
	}
	if err := Allows("dev", store.Protection{Tags: []string{"v*"}}, "refs/heads/main"); err == nil {
		t.Error("a tags-only policy lets a branch deploy")
	}
}

func TestCheck(t *testing.T) {
	ok := store.Protection{Reviewers: []store.Reviewer{{User: "bob"}, {Role: store.OrgMaintainer}}, WaitMinutes: 30,
		Branches: []string{"main", "release/**"}}
	if err := Check(ok); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]store.Protection{
		"both user and role": {Reviewers: []store.Reviewer{{User: "a", Role: store.OrgAdmin}}},
		"neither":            {Reviewers: []store.Reviewer{{}}},
		"unknown role":       {Reviewers: []store.Reviewer{{Role: "owner"}}},
		"too many":           {Reviewers: make([]store.Reviewer, 7)},
		"negative wait":      {WaitMinutes: -1},
		"long wait":          {WaitMinutes: MaxWaitMinutes + 1},
		"negated":            {Branches: []string{"!main"}},
		"bad pattern":        {Tags: []string{"v["}},
	} {
		if err := Check(p); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	for _, n := range []string{"", " prod", "a,b", "x\ny", strings.Repeat("e", 256)} {
		if CheckName(n) == nil {
			t.Errorf("CheckName(%q) accepted", n)
		}
	}
}

func TestMayReview(t *testing.T) {
	d := &store.Deployment{Environment: "production", Reviewers: []store.Reviewer{{User: "Bob"}, {Role: store.OrgMaintainer}},
		Actor: "alice", PreventSelfReview: true}
	for _, c := range []struct {
		who  Reviewer
		want bool
	}{
		{Reviewer{"bob", store.OrgViewer}, true},       // listed user, case aside
		{Reviewer{"carol", store.OrgMaintainer}, true}, // listed role
		{Reviewer{"dave", store.OrgAdmin}, true},       // admins always
		{Reviewer{"erin", store.OrgDeveloper}, false},  // neither
		{Reviewer{"alice", store.OrgAdmin}, false},     // her own run
	} {
		err := MayReview(d, c.who)
		if (err == nil) != c.want || err != nil && !errs.Is(err, errs.Forbidden) {
			t.Errorf("%+v: %v, want allowed=%v", c.who, err, c.want)
		}
	}
	d.PreventSelfReview = false
	if err := MayReview(d, Reviewer{"alice", store.OrgAdmin}); err != nil {
		t.Errorf("self review allowed by the setting: %v", err)
	}
}

func TestMap(t *testing.T) {
	m := store.EnvMapping{Rules: []store.EnvRule{{Branch: "main", Environment: "production"}, {Branch: "release/*", Environment: "staging"}},
		Other: "preview-{branch}"}
	for ref, want := range map[string]struct {
		env string
		per bool
	}{
		"refs/heads/main":        {"production", false},
		"refs/heads/release/2.0": {"staging", false},
		"refs/heads/feature/x":   {"preview-feature/x", true},
		"refs/tags/v1":           {"", false},
		"refs/pull/3/merge":      {"", false},
	} {
		env, per := Map(m, ref)
		if env != want.env || per != want.per {
			t.Errorf("Map(%s) = %q %v, want %q %v", ref, env, per, want.env, want.per)
		}
	}
	if env, _ := Map(store.EnvMapping{Rules: m.Rules}, "refs/heads/dev"); env != "" {
		t.Errorf("no Other: %q", env)
	}
	if err := CheckMapping(m); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []store.EnvMapping{{Rules: []store.EnvRule{{Branch: "!main", Environment: "p"}}},
		{Rules: []store.EnvRule{{Branch: "main", Environment: ""}}}, {Other: "a,{branch}"}} {
		if err := CheckMapping(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("CheckMapping(%+v) = %v", bad, err)
		}
	}
}
