package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/worker"
)

// PodWorkers configures the kubernetes backend's worker layout: a job's
// pod runs the one-job worker (conveyor agent one-job), which runs the
// steps in its own container and reports over the agent protocol with a
// credential valid for that job only, instead of this replica driving
// each step over an attach stream. Jobs it cannot run (see inPodReason)
// keep the attach layout.
type PodWorkers struct {
	// ServerURL is the URL job pods reach this server at (their network
	// differs from users'); "": every job keeps the attach layout.
	ServerURL string
	// PoolsOnly limits the worker layout to the kubernetes pools that
	// ask for it (worker: pod); otherwise every kubernetes job takes it
	// but those of pools that say worker: attach.
	PoolsOnly bool
}

// checkPodWorkers refuses pools that ask for the worker layout of a
// server that pods cannot reach.
func checkPodWorkers(pw PodWorkers, pools *pool.Scheduler) error {
	if pools == nil || pw.ServerURL != "" {
		return nil
	}
	for _, sp := range pools.Specs() {
		if sp.Worker == "pod" {
			return errs.E("server", errs.Invalid, "pool %s has worker: pod, which needs the URL job pods reach the server at (--kube-server-url)", sp.Name)
		}
	}
	return nil
}

// podWorkerBackend is the kubernetes backend the job runs on in the
// worker layout, or nil for the attach layout (or no kubernetes).
func (s *Server) podWorkerBackend(ctx context.Context, l *store.Lease, slot *pool.Slot) (*kubernetes.Backend, *jobspec.Job) {
	pw, layout := s.cfg.PodWorkers, ""
	b := s.backends.Main
	if slot != nil {
		b, layout = slot.Backends().Main, slot.Pool().Spec.Worker
	}
	if pw.ServerURL == "" || layout == "attach" || layout == "" && pw.PoolsOnly {
		return nil, nil
	}
	kb, ok := b.(*kubernetes.Backend)
	if !ok || !kb.WorkerPods(ctx) {
		return nil, nil
	}
	spec, err := s.compiledJob(l)
	if err != nil || inPodReason(ctx, spec, kb) != "" {
		return nil, nil // the attach layout says what is wrong, or runs it
	}
	if img := podImage(s.jobEnv(slot).Platforms, spec.RunsOn.Labels); img == "" || img == "-self-hosted" {
		return nil, nil
	}
	// Network policy none denies the pod all egress: its worker could
	// not report.
	if repo, err := s.store.GetRepo(ctx, l.Run.OrgID, l.Run.RepoID); err != nil || repo.NetworkPolicy == string(backend.NetworkNone) {
		return nil, nil
	}
	return kb, spec
}

// podImage is the image the platforms map the job's runs-on labels to
// ("": none).
func podImage(platforms map[string]string, labels []string) string {
	for _, l := range labels {
		if img, ok := platforms[strings.ToLower(l)]; ok {
			return img
		}
	}
	return ""
}

// podJobSpec is what the job's pod is made of: the image of its runs-on
// labels, their profile, its services, its repository's sandbox settings
// and whom it runs for.
func (s *Server) podJobSpec(ctx context.Context, l *store.Lease, slot *pool.Slot, job *jobspec.Job) (*backend.JobSpec, error) {
	asg, err := s.assignment(ctx, l) // as its worker will get it
	if err != nil {
		return nil, err
	}
	labels := job.RunsOn.Labels
	spec := &backend.JobSpec{ID: fmt.Sprintf("%d-%d-%d", l.Run.ID, l.Job.ID, l.Job.Attempt), Name: l.Job.Name,
		Image: podImage(s.jobEnv(slot).Platforms, labels), Network: backend.NetworkPolicy(asg.NetworkPolicy),
		Tenant: backend.Tenant{Org: asg.Org, Repo: asg.Run.Repository, OrgID: asg.OrgID, RunID: l.Run.ID, JobID: l.Job.ID,
			Lease: l.Job.LeaseToken, MaxJobs: asg.MaxJobs}}
	ch, err := s.cfg.Profiles.Select(labels)
	if err != nil {
		return nil, err
	}
	if spec.Runtime, err = profiles.JobRuntime(asg.Runtime, ch); err != nil {
		return nil, err
	}
	spec.Resources, spec.Placement = ch.Resources, ch.Placement
	for i, st := range job.Steps {
		if img, ok := dockerStepImage(st); ok {
			name := st.ID
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			spec.ImageSteps = append(spec.ImageSteps, backend.ImageStepPlan{Step: name, Image: img})
		}
	}
	if m, err := strconv.ParseFloat(job.TimeoutMinutes, 64); err == nil && m > 0 {
		spec.Timeout = time.Duration(m * float64(time.Minute))
	}
	for _, svc := range job.Services {
		env := map[string]string{}
		for _, kv := range svc.Env {
			env[kv.Key] = kv.Value
		}
		spec.Services = append(spec.Services, backend.Service{Name: svc.Name, Image: strings.TrimPrefix(svc.Image, "docker://"),
			Env: env, Options: svc.Options, Volumes: svc.Volumes, Ports: svc.Ports})
	}
	return spec, nil
}

// imageLookup says whether the configuration of images (their
// ENTRYPOINT and CMD) can be looked up (*kubernetes.Backend, through its
// registry lookup), as their step containers need.
type imageLookup interface {
	ImageConfigs(ctx context.Context, images []string) error
}

// inPodReason says why the in-pod worker cannot run job ("": it can):
// a job container, a reusable workflow, a matrix (one pod per instance),
// a runs-on or service that needs expressions evaluated (secrets, matrix
// values) before the pod, or a docker:// step that cannot have a step
// container in the pod (an image with an expression, or whose
// configuration images cannot look up).
func inPodReason(ctx context.Context, job *jobspec.Job, images imageLookup) string {
	switch {
	case job.Call != nil:
		return "a reusable workflow call"
	case job.Container != nil:
		return "a job container"
	case job.Strategy != nil && job.Strategy.Matrix != nil:
		return "a matrix"
	case job.RunsOn == nil || len(job.RunsOn.Labels) == 0:
		return "no runs-on labels"
	}
	for _, l := range job.RunsOn.Labels {
		if strings.Contains(l, "${{") {
			return "runs-on with an expression"
		}
	}
	for _, svc := range job.Services {
		if svc.Credentials != nil || strings.Contains(fmt.Sprint(svc.Image, svc.Env, svc.Options, svc.Volumes, svc.Ports), "${{") {
			return "a service with expressions or credentials"
		}
	}
	var imgs []string
	for _, st := range job.Steps {
		img, ok := dockerStepImage(st)
		switch {
		case !ok:
			continue
		case img == "":
			return "a docker:// step without an image"
		case strings.Contains(img, "${{"):
			return "a docker:// step with an expression"
		case !slices.Contains(imgs, img):
			imgs = append(imgs, img)
		}
	}
	if len(imgs) > 0 {
		if images == nil {
			return "a docker:// step"
		}
		if err := images.ImageConfigs(ctx, imgs); err != nil {
			return "a docker:// step whose image's configuration cannot be looked up: " + err.Error()
		}
	}
	return ""
}

// dockerStepImage is the image of a uses: docker://IMAGE step, as the
// executor gives it to RunContainer.
func dockerStepImage(st jobspec.Step) (string, bool) {
	return strings.CutPrefix(strings.TrimSpace(st.Uses.Text), "docker://")
}

// runInPod runs a leased job in the worker layout: mints the job's worker
// credential, makes the pod and waits for it, heartbeating the lease
// meanwhile (the worker heartbeats too); the pod is always deleted. A pod
// whose worker never ran or ended without recording the job fails the
// job with the reason, or hands it back when its pool had no room.
func (s *Server) runInPod(ctx context.Context, l *store.Lease, slot *pool.Slot, kb *kubernetes.Backend, compiled *jobspec.Job, log *slog.Logger) {
	job := l.Job
	lease := &storeLease{s: s, job: job}
	defer s.revokeJobTokens(context.WithoutCancel(ctx), job.ID)
	if slot != nil {
		defer slot.Done()
	}
	sink := &podLog{s: s, jobID: job.ID}
	spec, err := s.podJobSpec(ctx, l, slot, compiled)
	if err != nil {
		s.endInPod(ctx, lease, sink, log, "", err)
		return
	}
	cred, err := s.newJobWorkerToken(ctx, job)
	if err != nil {
		s.endInPod(ctx, lease, sink, log, "", err)
		return
	}
	podCtx, stopPod := context.WithCancel(ctx)
	defer stopPod()
	hb := make(chan struct{})
	go func() { defer close(hb); s.keepLease(podCtx, lease, stopPod, log) }()
	end, err := kb.RunWorkerPod(podCtx, kubernetes.WorkerPod{Job: spec, Args: []string{"agent", "one-job"}, Env: map[string]string{
		"CONVEYOR_SERVER": strings.TrimRight(s.cfg.PodWorkers.ServerURL, "/"), "CONVEYOR_JOB_ID": itoa(job.ID),
		"CONVEYOR_JOB_LEASE": itoa(job.LeaseToken), "CONVEYOR_JOB_CREDENTIAL": cred,
		"CONVEYOR_JOB_LEASE_TTL_MS": itoa(ms(s.cfg.LeaseTTL)), "CONVEYOR_JOB_HEARTBEAT_MS": itoa(ms(min(s.cfg.LeaseTTL/3, 5*time.Second))),
	}}, sink)
	stopPod()
	<-hb
	if ctx.Err() != nil {
		log.Warn("server stopping: the job's pod is deleted; its worker hands the job back (or the lease expires)")
		return
	}
	s.endInPod(ctx, lease, sink, log, end.String(), err)
}

// keepLease heartbeats the job's lease until ctx ends; a lease that ended
// (the worker recorded the job, or another attempt owns it) stops the pod.
func (s *Server) keepLease(ctx context.Context, lease *storeLease, stop func(), log *slog.Logger) {
	t := time.NewTicker(min(s.cfg.LeaseTTL/3, 3*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := lease.Heartbeat(hctx)
		cancel()
		if err != nil && worker.LeaseLost(err) {
			log.Info("the job's lease ended; deleting its pod", "why", err)
			stop()
			return
		}
	}
}

// endInPod records the end of a job whose pod is gone, unless its worker
// did: a job still running under this lease failed to start (err) or its
// worker died (end) before reporting.
func (s *Server) endInPod(ctx context.Context, lease *storeLease, sink *podLog, log *slog.Logger, end string, err error) {
	job := lease.job
	cur, gerr := s.store.GetJob(ctx, job.OrgID, job.ID)
	if gerr == nil && (cur.LeaseToken != job.LeaseToken || cur.Status != store.StatusRunning) {
		return // the worker recorded it (or another attempt owns it)
	}
	if err != nil && errors.Is(err, backend.ErrNoRoom) {
		if rerr := lease.Release(ctx, "its kubernetes pool had no room: "+err.Error()); rerr == nil {
			return
		}
	}
	reason := "the job's pod ended before its worker recorded the job: " + end
	if err != nil {
		reason = "the job's pod could not run its worker: " + err.Error()
	}
	_, _ = sink.Write([]byte("Error: " + reason + "\n"))
	rep := jobspec.Report{Version: jobspec.Version, Status: jobspec.Error, Error: reason}
	if cerr := lease.Complete(ctx, rep); cerr != nil {
		log.Warn("recording the failure of a job's pod", "err", cerr)
	}
	log.Warn("job failed in its pod", "reason", reason)
}

// podLog writes the server's lines about a job's pod to the job's log.
type podLog struct {
	s     *Server
	jobID int64
}

func (p *podLog) Write(b []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := (hubLogs{p.s.store, p.s.hub}).AppendLog(ctx, p.jobID, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
