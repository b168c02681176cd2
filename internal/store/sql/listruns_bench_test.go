package sqlstore

import (
	"fmt"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// BenchmarkListRuns: a page of the runs list, unfiltered and by status,
// at 1k and 100k runs of history (one run in 10 failed): with the indexes
// the cost is flat.
//
//	go test -run '^$' -bench ListRuns ./internal/store/sql/
func BenchmarkListRuns(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		s, repo, _ := repoSQLite(b)
		tx, err := s.w.Begin()
		must(b, err)
		stmt, err := tx.Prepare(`INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name, event,
			ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress,
			attempt, rerun_of, created) VALUES ($1, $2, 0, $3, 'ci.yml', 'ci', 'push', 'refs/heads/main', 'abc', 'webhook',
			$4, '{}', $5, $5, '', 0, 1, 0, 1)`)
		must(b, err)
		for i := range n {
			status := store.StatusSuccess
			if i%10 == 0 {
				status = store.StatusFailure
			}
			_, err := stmt.Exec(repo.OrgID, repo.ID, i+1, status, []byte{})
			must(b, err)
		}
		must(b, stmt.Close())
		must(b, tx.Commit())
		for _, f := range []struct {
			name string
			f    store.RunFilter
		}{{"all", store.RunFilter{Limit: 50}}, {"status", store.RunFilter{Status: store.StatusFailure, Limit: 50}}} {
			b.Run(fmt.Sprintf("%s/runs=%d", f.name, n), func(b *testing.B) {
				for b.Loop() {
					rs, err := s.ListRuns(b.Context(), repo.OrgID, f.f)
					if err != nil || len(rs) != 50 {
						b.Fatalf("%d runs, %v", len(rs), err)
					}
				}
			})
		}
	}
}
