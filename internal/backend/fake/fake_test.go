package fake

import (
	"context"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

func TestFake(t *testing.T) {
	b := New(func(ctx context.Context, job *backend.JobSpec, p *backend.Process) (string, int, error) {
		if p.Argv[0] == "fail" {
			return "boom\n", 1, nil
		}
		return strings.Join(p.Argv, " ") + "\n", 0, nil
	})
	ctx := context.Background()
	sb, err := b.Setup(ctx, &backend.JobSpec{ID: "j1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"echo", "hi"}}, &out); code != 0 || err != nil || out.String() != "echo hi\n" {
		t.Errorf("exec: %d %v %q", code, err, out.String())
	}
	if code, _ := sb.Exec(ctx, &backend.Process{Argv: []string{"fail"}}, &out); code != 1 {
		t.Errorf("fail: %d", code)
	}
	if sb.Dirs().Host == "" || sb.Dirs().Host != sb.Dirs().Sandbox {
		t.Errorf("dirs %+v", sb.Dirs())
	}
	if got := b.Live(); len(got) != 1 {
		t.Errorf("live = %v", got)
	}
	_ = sb.Teardown(ctx)
	_ = sb.Teardown(ctx)
	if b.Teardowns("j1") != 2 || len(b.Live()) != 0 || len(b.Execs("j1")) != 2 {
		t.Errorf("teardowns %d, live %v, execs %d", b.Teardowns("j1"), b.Live(), len(b.Execs("j1")))
	}
}
