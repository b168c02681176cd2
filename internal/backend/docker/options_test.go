package docker

import (
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(`--cpus=1.5 -m 512m --hostname h --user 1000:1000 -e A=1 --env "B=two words" -w /src --entrypoint /bin/sh --network-alias db --health-cmd "pg_isready -U x" --health-interval 2s --health-retries 5 --health-timeout=1s`)
	if err != nil {
		t.Fatal(err)
	}
	if o.cpus != 1.5 || o.memory != 512<<20 || o.hostname != "h" || o.user != "1000:1000" || o.workdir != "/src" ||
		len(o.env) != 2 || o.env[1] != "B=two words" || o.entrypoint[0] != "/bin/sh" || o.aliases[0] != "db" ||
		o.health.Test[1] != "pg_isready -U x" || o.health.Interval != 2*time.Second || o.health.Retries != 5 || o.health.Timeout != time.Second {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range []string{"--privileged", "--cap-add X", "--cpus", "--cpus abc", "-e NOVALUE", "stray", `--hostname "unterminated`, "--memory lots"} {
		if _, err := parseOptions(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	if o, err := parseOptions("  "); err != nil || o.cpus != 0 {
		t.Errorf("empty: %v", err)
	}
}
