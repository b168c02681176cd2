package main

import (
	"crypto/sha256"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// TestQuotaAndUsageCommands: a server admin sets and shows a quota, every
// change is audited, an organisation admin may read but not change it, and
// usage shows the month's build seconds against the limit.
func TestQuotaAndUsageCommands(t *testing.T) {
	db, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org, _ := db.EnsureOrg(t.Context(), "default")
	token := func(name string) string { sum := sha256.Sum256([]byte(name)); return string(sum[:]) }
	if _, err := db.CreateFirstAdmin(t.Context(), &store.User{Name: "admin"}, org.ID,
		&store.Token{Name: "admin", Role: store.RoleAdmin, Hash: []byte(token("cvy_first"))}); err != nil {
		t.Fatal(err)
	}
	bob := &store.User{Name: "bob"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateUser(t.Context(), bob))
	must(db.SetMember(t.Context(), org.ID, bob.ID, store.OrgAdmin))
	must(db.CreateToken(t.Context(), &store.Token{OrgID: org.ID, UserID: bob.ID, Name: "bob", Role: store.RoleAdmin, Hash: []byte(token("cvy_bob"))}))
	srv := httptest.NewServer(api.New(api.Deps{Store: db, Accounts: db, Quotas: db}))
	t.Cleanup(srv.Close)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CONVEYOR_CONFIG", "")
	t.Setenv("CONVEYOR_SERVER", srv.URL)
	t.Setenv("CONVEYOR_TOKEN", "cvy_first")

	if code, out, errs := cli(t, "", "quota", "show"); code != 0 || !strings.Contains(out, "concurrent jobs:       no limit") {
		t.Fatalf("quota show before any: %d %q %s", code, out, errs)
	}
	if code, _, errs := cli(t, "", "quota", "set"); code != 2 || !strings.Contains(errs, "give --max-jobs") {
		t.Fatalf("quota set without a limit: %d %s", code, errs)
	}
	code, out, errs := cli(t, "", "quota", "set", "--max-jobs", "2", "--monthly-build-seconds", "100")
	if code != 0 || !strings.Contains(out, "concurrent jobs:       2 at most") || !strings.Contains(out, "monthly build seconds: 100 at most") {
		t.Fatalf("quota set: %d %q %s", code, out, errs)
	}
	// A field left out keeps its value.
	code, out, errs = cli(t, "", "quota", "set", "--org", "default", "--max-timeout", "30")
	if code != 0 || !strings.Contains(out, "2 at most") || !strings.Contains(out, "job timeout:           30 minutes at most") {
		t.Fatalf("quota set --max-timeout: %d %q %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "audit"); code != 0 || !strings.Contains(out, "quota.set") ||
		!strings.Contains(out, "max_concurrent_jobs 2, max_timeout_minutes 30, monthly_build_seconds 100 (was max_concurrent_jobs 2, max_timeout_minutes 0") {
		t.Errorf("audit after quota set: %d %q", code, out)
	}
	month := store.Month(time.Now())
	if code, out, errs := cli(t, "", "usage"); code != 0 || out != "default in "+month+": 0.0 build seconds over 0 jobs (0.0% of the monthly limit of 100)\n" {
		t.Errorf("usage: %d %q %s", code, out, errs)
	}
	if code, _, errs := cli(t, "", "usage", "--month", "2026-13"); code != 1 || !strings.Contains(errs, "not YYYY-MM") {
		t.Errorf("usage --month 2026-13: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "usage", "--org", "nowhere"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("usage --org nowhere: %d %s", code, errs)
	}

	// An organisation admin reads the quota but may not change it.
	t.Setenv("CONVEYOR_TOKEN", "cvy_bob")
	if code, out, _ := cli(t, "", "quota", "show"); code != 0 || !strings.Contains(out, "2 at most") {
		t.Errorf("quota show as an organisation admin: %d %q", code, out)
	}
	if code, _, errs := cli(t, "", "quota", "set", "--max-jobs", "50"); code != 1 || !strings.Contains(errs, "server admin") {
		t.Errorf("quota set as an organisation admin: %d %s", code, errs)
	}
}
