package server

import (
	"context"

	"github.com/conveyor-ci/conveyor/internal/store"
)

func allRepos(ctx context.Context, st store.Store) ([]*store.Repo, error) {
	if a, ok := st.(interface {
		AllRepos(context.Context) ([]*store.Repo, error)
	}); ok {
		return a.AllRepos(ctx)
	}
	return st.ListRepos(ctx, 1)
}
