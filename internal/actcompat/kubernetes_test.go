package actcompat

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// TestActCorpusKubernetes runs the corpus with a pod per job on the test
// cluster (scripts/k8s/up.sh). The cluster has no registry either: the
// images the corpus names are mapped onto the imported test images, as
// tagAliases does for Docker.
func TestActCorpusKubernetes(t *testing.T) {
	kc := testenv.Kubeconfig(t)
	image := testenv.Image(t)
	busybox := testenv.BusyboxImage(t)
	bin := filepath.Join(t.TempDir(), "conveyor")
	build := exec.Command("go", "build", "-o", bin, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the step runner: %v\n%s", err, out)
	}
	cfg, err := kubernetes.LoadConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	kb, err := kubernetes.New(kubernetes.Options{Config: cfg, Namespace: "conveyor-actcompat", RunnerBinary: bin,
		PullPolicy: corev1.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]string{}
	for alias, from := range imageAliases {
		aliases[alias] = image
		if from == "busybox" {
			aliases[alias] = busybox
		}
	}
	main := &aliased{Backend: kb, aliases: aliases}
	platforms := map[string]string{}
	for _, l := range []string{"ubuntu-latest", "ubuntu-22.04", "ubuntu-20.04", "ubuntu-18.04", "linux"} {
		platforms[l] = image
	}
	platforms["self-hosted"] = "-self-hosted"
	h := host.New(host.Options{})
	var left []string
	want := func(r row) bool {
		if why, ok := kubernetesOutOfScope[r.dir]; ok {
			left = append(left, r.name()+" ("+why+")")
			return false
		}
		return true
	}
	runCorpus(t, "kubernetes", want, backends{main: main, host: h}, platforms)
	msg := fmt.Sprintf("act corpus (kubernetes backend): %d more rows out of scope than on Docker: %s", len(left), strings.Join(left, "; "))
	t.Log(msg)
	testenv.Report(t, msg)
}

// kubernetesOutOfScope are rows that pass on Docker but cannot on the
// kubernetes backend yet, with the reason.
var kubernetesOutOfScope = map[string]string{
	"container-hostname": "--hostname my.host.local: a pod's host name is one DNS label; the backend refuses it",
}

// aliased maps image names onto images the cluster has.
type aliased struct {
	*kubernetes.Backend
	aliases map[string]string
}

func (a *aliased) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	j := *job
	j.Image = a.image(j.Image)
	if j.Container != nil {
		c := *j.Container
		c.Image = a.image(c.Image)
		j.Container = &c
	}
	j.Services = append([]backend.Service(nil), j.Services...)
	for i := range j.Services {
		j.Services[i].Image = a.image(j.Services[i].Image)
	}
	sb, err := a.Backend.Setup(ctx, &j, log)
	if err != nil {
		return nil, err
	}
	return &aliasedSandbox{Sandbox: sb.(*kubernetes.Sandbox), a: a}, nil
}

// aliasedSandbox maps the images of image steps (docker://, Docker
// actions) as aliased does the job's.
type aliasedSandbox struct {
	*kubernetes.Sandbox
	a *aliased
}

func (s *aliasedSandbox) RunContainer(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	cs := *c
	cs.Image = s.a.image(cs.Image)
	return s.Sandbox.RunContainer(ctx, &cs, out)
}

func (a *aliased) image(s string) string {
	if v, ok := a.aliases[s]; ok {
		return v
	}
	return s
}
