package kubernetes

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

const (
	volWorkspace = "workspace"
	volRunner    = "conveyor"
)

// podSpec is the job's pod, or an Invalid/Unavailable error for what the
// backend cannot run.
func (b *Backend) podSpec(job *backend.JobSpec) (*corev1.Pod, error) {
	img, ctr, o, err := jobImage(job)
	if err != nil {
		return nil, err
	}
	main, err := b.jobContainer(job, img, ctr.Env, o)
	if err != nil {
		return nil, err
	}
	labels, annotations := b.podLabels(job)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        podName(job.ID),
			Namespace:   b.NamespaceOf(job.Tenant),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr(false),
			EnableServiceLinks:            ptr(false),
			TerminationGracePeriodSeconds: ptr(int64(b.opts.GracePeriod.Seconds())),
			NodeSelector:                  nodeSelector(b.opts.NodeSelector, job.Placement.NodeSelector),
			Tolerations:                   append(slices.Clone(b.opts.Tolerations), tolerations(job.Placement.Tolerations)...),
			Hostname:                      o.Hostname,
			Volumes: []corev1.Volume{
				{Name: volWorkspace, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: volRunner, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			InitContainers: []corev1.Container{b.installContainer(img)},
			Containers:     []corev1.Container{main},
		},
	}
	if d := b.deadline(job); d > 0 {
		pod.Spec.ActiveDeadlineSeconds = ptr(int64(d.Seconds()))
	}
	if rc := b.runtimeClass(job); rc != "" {
		pod.Spec.RuntimeClassName = &rc
	}
	if b.opts.RunAsUser != nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: b.opts.RunAsUser}
	}
	if err := b.addServices(pod, job.Services); err != nil {
		return nil, err
	}
	return pod, nil
}

// jobImage checks the job and gives the image of its job container, its
// container: (zero without one) and that container's parsed options.
func jobImage(job *backend.JobSpec) (string, backend.Container, *docker.CreateOptions, error) {
	const op = "kubernetes: setup"
	var ctr backend.Container
	if job.ID == "" || job.JobDir == "" {
		return "", ctr, nil, errs.E(op, errs.Invalid, "job %q needs an ID and a job directory", job.Name)
	}
	if _, err := backend.ParseNetworkPolicy(string(job.Network)); err != nil {
		return "", ctr, nil, errs.Wrap(op+": job "+job.Name, errs.Invalid, err)
	}
	img := job.Image
	if job.Container != nil {
		ctr = *job.Container
		if img == "" {
			img = ctr.Image
		}
	}
	if img == "" {
		return "", ctr, nil, errs.E(op, errs.Invalid, "job %q has no image", job.Name)
	}
	if err := unsupported("job "+job.Name, ctr.Volumes, ctr.Credentials); err != nil {
		return "", ctr, nil, err
	}
	o, err := docker.ParseCreateOptions(ctr.Options)
	if err != nil {
		return "", ctr, nil, errs.Wrap("kubernetes: job "+job.Name, errs.Invalid, err)
	}
	if o.Entrypoint != nil {
		return "", ctr, nil, errs.E("kubernetes: job "+job.Name, errs.Invalid, "--entrypoint cannot be set for a job container (its main process is the step runner); it is allowed for services")
	}
	return img, ctr, o, nil
}

// addServices adds the job's services to pod as sidecar containers.
func (b *Backend) addServices(pod *corev1.Pod, services []backend.Service) error {
	var hosts []string
	for _, svc := range services {
		c, names, err := b.serviceContainer(svc)
		if err != nil {
			return err
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
		hosts = append(hosts, names...)
	}
	if len(hosts) > 0 {
		// Services listen on the pod's localhost; their names resolve to
		// it as they resolve to the service containers on Docker.
		pod.Spec.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: hosts}}
	}
	return nil
}

// DeadlineMargin is what a job's pod may live past the job's timeout
// (activeDeadlineSeconds = timeout-minutes + this): the cleanup steps that
// run after a timeout (post steps, if: always(), 2 minutes each at most)
// and the teardown. The pod's clock starts after the executor's, so the
// executor's own timeout always comes first.
const DeadlineMargin = 5 * time.Minute

// deadline is the pod's activeDeadlineSeconds: the job's timeout plus
// DeadlineMargin, or Options.ActiveDeadline when that is shorter (0:
// none).
func (b *Backend) deadline(job *backend.JobSpec) time.Duration {
	d := b.opts.ActiveDeadline
	if job.Timeout > 0 {
		if t := job.Timeout + DeadlineMargin; d == 0 || t < d {
			d = t
		}
	}
	return d
}

// nodeSelector is the backend's node selector with the job's (its
// runs-on labels') added; the job's value wins for a label both give.
func nodeSelector(all, job map[string]string) map[string]string {
	if len(job) == 0 {
		return all
	}
	out := make(map[string]string, len(all)+len(job))
	maps.Copy(out, all)
	maps.Copy(out, job)
	return out
}

func tolerations(in []backend.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range in {
		out = append(out, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value,
			Effect: corev1.TaintEffect(t.Effect), TolerationSeconds: t.Seconds})
	}
	return out
}

func (b *Backend) runtimeClass(job *backend.JobSpec) string {
	if job.Runtime != "" {
		return job.Runtime
	}
	return b.opts.RuntimeClassName
}

// unsupported refuses container settings that have no pod equivalent yet.
func unsupported(what string, volumes []string, creds *backend.Credentials) error {
	if len(volumes) > 0 {
		return errs.E("kubernetes: "+what, errs.Invalid, "volumes are not supported on the kubernetes backend (the job folder is shared by every container of the pod)")
	}
	if creds != nil {
		return errs.E("kubernetes: "+what, errs.Invalid, "registry credentials are not supported on the kubernetes backend yet; give the namespace's default service account an imagePullSecret")
	}
	return nil
}

// hardened is the security context of every container.
func hardened(user *int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Privileged:               ptr(false),
		RunAsUser:                user,
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func withGroup(sc *corev1.SecurityContext, gid *int64) *corev1.SecurityContext {
	sc.RunAsGroup = gid
	return sc
}

func (b *Backend) installContainer(img string) corev1.Container {
	return corev1.Container{
		Name:            installContainer,
		Image:           img,
		ImagePullPolicy: b.opts.PullPolicy,
		Command:         []string{"sh", "-c", installScript},
		Stdin:           true,
		StdinOnce:       true,
		SecurityContext: hardened(b.opts.RunAsUser),
		VolumeMounts:    []corev1.VolumeMount{{Name: volRunner, MountPath: runnerDir}},
	}
}

// jobContainer runs the step runner; it waits for the backend's attach
// (--await) before its hello, which an attach would not replay.
func (b *Backend) jobContainer(job *backend.JobSpec, img string, env map[string]string, o *docker.CreateOptions) (corev1.Container, error) {
	user := b.opts.RunAsUser
	var group *int64
	if o.User != "" {
		u, g, hasGroup := strings.Cut(o.User, ":")
		uid, err := strconv.ParseInt(u, 10, 64)
		var gid int64
		if err == nil && hasGroup {
			gid, err = strconv.ParseInt(g, 10, 64)
			group = &gid
		}
		if err != nil {
			return corev1.Container{}, errs.E("kubernetes: job "+job.Name, errs.Invalid, "--user %q: the kubernetes backend takes numeric ids (UID or UID:GID)", o.User)
		}
		user = &uid
	}
	if strings.Contains(o.Hostname, ".") {
		return corev1.Container{}, errs.E("kubernetes: job "+job.Name, errs.Invalid, "--hostname %q: a pod's host name is one DNS label on Kubernetes (no dots)", o.Hostname)
	}
	workdir := b.opts.SandboxDir
	if o.Workdir != "" {
		workdir = o.Workdir
	}
	res, err := limits(job.Resources, o)
	if err != nil {
		return corev1.Container{}, err
	}
	return corev1.Container{
		Name:            jobContainer,
		Image:           img,
		ImagePullPolicy: b.opts.PullPolicy,
		Command:         []string{runnerPath, "entrypoint", "--await"},
		Stdin:           true,
		StdinOnce:       true,
		WorkingDir:      workdir,
		Env:             envVars(env, o.Env),
		Resources:       res,
		SecurityContext: withGroup(hardened(user), group),
		VolumeMounts: []corev1.VolumeMount{
			{Name: volWorkspace, MountPath: b.opts.SandboxDir},
			{Name: volRunner, MountPath: runnerDir, ReadOnly: true},
		},
	}, nil
}

// serviceContainer is a sidecar for svc, and the host names it answers to.
func (b *Backend) serviceContainer(svc backend.Service) (corev1.Container, []string, error) {
	what := "service " + svc.Name
	if err := unsupported(what, svc.Volumes, svc.Credentials); err != nil {
		return corev1.Container{}, nil, err
	}
	o, err := docker.ParseCreateOptions(svc.Options)
	if err != nil {
		return corev1.Container{}, nil, errs.Wrap("kubernetes: "+what, errs.Invalid, err)
	}
	res, err := limits(backend.Resources{}, o)
	if err != nil {
		return corev1.Container{}, nil, err
	}
	c := corev1.Container{
		Name:            dnsName("svc-"+svc.Name, 63),
		Image:           svc.Image,
		ImagePullPolicy: b.opts.PullPolicy,
		Command:         o.Entrypoint,
		WorkingDir:      o.Workdir,
		Env:             envVars(svc.Env, o.Env),
		Resources:       res,
		SecurityContext: hardened(nil),
		VolumeMounts:    []corev1.VolumeMount{{Name: volWorkspace, MountPath: b.opts.SandboxDir}},
	}
	if h := o.Health; h != nil && h.Cmd != "" {
		p := &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", h.Cmd}}},
			PeriodSeconds:    seconds(h.Interval, 1),
			TimeoutSeconds:   seconds(h.Timeout, 1),
			FailureThreshold: 1,
		}
		if h.Retries > 0 {
			p.FailureThreshold = int32(h.Retries)
		}
		c.ReadinessProbe = p
	}
	if b.serviceArgs != nil {
		c.Args = b.serviceArgs(svc)
	}
	names := append([]string{svc.Name}, o.Aliases...)
	return c, names, nil
}

func seconds(d time.Duration, min int32) int32 {
	s := int32(d.Seconds())
	if s < min {
		return min
	}
	return s
}

// limits are the job's caps, lowered by the container's options; requests
// equal limits (Guaranteed QoS when both are set).
func limits(r backend.Resources, o *docker.CreateOptions) (corev1.ResourceRequirements, error) {
	lower := func(a, b float64) float64 {
		if a == 0 || (b != 0 && b < a) {
			return b
		}
		return a
	}
	rl := corev1.ResourceList{}
	if c := lower(r.CPUs, o.CPUs); c > 0 {
		rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(c*1000), resource.DecimalSI)
	}
	if m := lower(float64(r.MemoryBytes), float64(o.Memory)); m > 0 {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(int64(m), resource.BinarySI)
	}
	if len(rl) == 0 {
		return corev1.ResourceRequirements{}, nil
	}
	return corev1.ResourceRequirements{Limits: rl, Requests: rl.DeepCopy()}, nil
}

func envVars(m map[string]string, extra []string) []corev1.EnvVar {
	all := map[string]string{}
	for k, v := range m {
		all[k] = v
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]corev1.EnvVar, 0, len(keys))
	for _, k := range keys {
		out = append(out, corev1.EnvVar{Name: k, Value: all[k]})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// podLabels are a job pod's labels and annotations: the job, and a server
// job's organisation, repository, run, job and lease (see SweepJobs).
func (b *Backend) podLabels(job *backend.JobSpec) (labels, annotations map[string]string) {
	labels = map[string]string{LabelManaged: managedBy, LabelJob: dnsName(job.ID, 63)}
	annotations = map[string]string{AnnotationJob: job.ID, AnnotationOwner: b.owner}
	if job.Network != "" && job.Network != backend.NetworkOpen {
		labels[LabelNetwork] = string(job.Network)
	}
	t := job.Tenant
	if t.JobID == 0 {
		return labels, annotations
	}
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	labels[LabelOrgID], labels[LabelRun], labels[LabelJobID], labels[LabelLease] = id(t.OrgID), id(t.RunID), id(t.JobID), id(t.Lease)
	if t.Org != "" {
		labels[LabelOrg], annotations[AnnotationOrg] = labelValue(t.Org), t.Org
	}
	if t.Repo != "" {
		labels[LabelRepo], annotations[AnnotationRepo] = labelValue(t.Repo), t.Repo
	}
	return labels, annotations
}
