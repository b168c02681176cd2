package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// poolEnv is the test cluster as two or more pools: a namespace each.
type poolEnv struct {
	t      *testing.T
	admin  *rest.Config
	cs     k8s.Interface
	img    string
	bin    string
	prefix string
}

func newPoolEnv(t *testing.T) *poolEnv {
	t.Helper()
	cfg, img, bin := kubeTestCluster(t)
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &poolEnv{t: t, admin: cfg, cs: cs, img: img, bin: bin, prefix: kubeTestPrefix(t, "pools")}
}

// namespace makes namespace prefix+name, deleted when the test ends.
func (e *poolEnv) namespace(name string) string {
	e.t.Helper()
	ns := e.prefix + name
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = e.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

// pool is a kubernetes pool of the test cluster in namespace ns, reached
// with cfg.
func (e *poolEnv) pool(name string, cfg *rest.Config, ns string, capacity int, burst bool) *pool.Pool {
	e.t.Helper()
	return e.poolWith(pool.Spec{Name: name, Kind: pool.Kubernetes, Namespace: ns, Capacity: capacity, Burst: burst,
		ProbeInterval: time.Second, PendingDeadline: 2 * time.Minute}, cfg)
}

func (e *poolEnv) poolWith(sp pool.Spec, cfg *rest.Config) *pool.Pool {
	e.t.Helper()
	kb, err := kubernetes.New(kubernetes.Options{Config: cfg, Namespace: sp.Namespace, RunnerBinary: e.bin, PullPolicy: corev1.PullNever,
		NodeSelector: sp.NodeSelector, PendingTimeout: sp.PendingDeadline})
	if err != nil {
		e.t.Fatal(err)
	}
	return &pool.Pool{Spec: sp, Backends: pool.Backends{Main: kb, Host: host.New(host.Options{})}, Probe: kb.Probe}
}

// server starts a server whose jobs run on pools, with workflow yml.
func (e *poolEnv) server(yml string, pools ...*pool.Pool) (*harness, *pool.Scheduler) {
	e.t.Helper()
	sched, err := pool.New(pools, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hs := newHarness(e.t, harnessOpts{
		cfg:   Config{Platforms: map[string]string{"ubuntu-latest": e.img}, LeaseTTL: 10 * time.Second, Workers: 16},
		files: map[string]string{".github/workflows/pools.yml": yml, "README.md": "hi\n"},
		pools: sched,
	})
	if code, body := hs.hook("push", hs.push("main", "README.md"), "p-1"); code != http.StatusAccepted {
		e.t.Fatalf("push: %d %s", code, body)
	}
	return hs, sched
}

var createdPod = regexp.MustCompile(`Created pod ([a-z0-9-]+)/conveyor-`)

// placement is the namespace each job of run r last made its pod in,
// after checking that every job succeeded.
func placement(t *testing.T, hs *harness, r *store.Run) map[string]string {
	t.Helper()
	out := map[string]string{}
	for key, j := range hs.jobs(r.ID) {
		log := hs.jobLog(r.ID, key)
		if j.Status != store.StatusSuccess {
			t.Errorf("job %s: %s (attempt %d):\n%s", key, j.Status, j.Attempt, log)
		}
		m := createdPod.FindAllStringSubmatch(log, -1)
		if len(m) == 0 {
			t.Errorf("job %s made no pod:\n%s", key, log)
			continue
		}
		out[key] = m[len(m)-1][1]
	}
	return out
}

// parallelJobs is a workflow of n jobs that overlap, then m more that
// need them all.
func parallelJobs(prefix string, n int, after string, m int, sleep int) string {
	var b strings.Builder
	b.WriteString("name: Pools\non: push\njobs:\n")
	var first []string
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		first = append(first, k)
		fmt.Fprintf(&b, "  %s:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"in pod $(hostname)\"; sleep %d\n", k, sleep)
	}
	for i := 1; i <= m; i++ {
		fmt.Fprintf(&b, "  %s%d:\n    needs: [%s]\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"in pod $(hostname)\"\n",
			after, i, strings.Join(first, ", "))
	}
	return b.String()
}

func count(place map[string]string, ns string, keys ...string) int {
	n := 0
	for k, v := range place {
		if v == ns && (len(keys) == 0 || slices.Contains(keys, k)) {
			n++
		}
	}
	return n
}

// Two pools (two namespaces of the test cluster) of capacity 2 each share
// four overlapping jobs: two each, the least loaded first; the pools'
// gauges are on /metrics.
func TestPoolsSpreadLoad(t *testing.T) {
	e := newPoolEnv(t)
	nsA, nsB := e.namespace("a"), e.namespace("b")
	hs, _ := e.server(parallelJobs("j", 4, "", 0, 8), e.pool("a", e.admin, nsA, 2, false), e.pool("b", e.admin, nsB, 2, false))
	r := hs.waitRuns(1, 8*time.Minute)[0]
	place := placement(t, hs, r)
	if count(place, nsA) != 2 || count(place, nsB) != 2 {
		t.Errorf("placement %v: want two jobs in each pool", place)
	}
	resp, err := http.Get(hs.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`conveyor_pool_capacity_jobs{burst="false",kind="kubernetes",pool="a"} 2`,
		`conveyor_pool_healthy{burst="false",kind="kubernetes",pool="b"} 1`, `conveyor_pool_running_jobs{burst="false",kind="kubernetes",pool="a"} 0`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A burst pool takes jobs only when the regular pool is full: the first
// job runs alone on the regular pool (capacity 1) although the burst pool
// is idle; of the three that follow at once, one runs on the regular
// pool, two on the burst pool.
func TestPoolsBurst(t *testing.T) {
	e := newPoolEnv(t)
	nsR, nsX := e.namespace("regular"), e.namespace("burst")
	hs, _ := e.server(parallelJobs("solo", 1, "p", 3, 1), e.pool("spot", e.admin, nsX, 3, true), e.pool("regular", e.admin, nsR, 1, false))
	r := hs.waitRuns(1, 8*time.Minute)[0]
	place := placement(t, hs, r)
	if place["solo1"] != nsR || count(place, nsR, "p1", "p2", "p3") != 1 || count(place, nsX, "p1", "p2", "p3") != 2 {
		t.Errorf("placement %v: want solo1 and one p job on the regular pool %s, two p jobs on the burst pool %s", place, nsR, nsX)
	}
}

// Pool b's credentials (a ServiceAccount's token, bound to a Role in its
// namespace) are revoked while its jobs run: its probe fails, it is
// drained, the jobs that follow run on pool a, and no job fails.
func TestPoolsFailover(t *testing.T) {
	e := newPoolEnv(t)
	nsA, nsB := e.namespace("a"), e.namespace("b")
	cfgB := e.serviceAccount(nsB)
	hs, sched := e.server(parallelJobs("w", 4, "x", 4, 10), e.pool("a", e.admin, nsA, 2, false), e.pool("b", cfgB, nsB, 2, false))
	ctx := context.Background()
	waitFor(t, 6*time.Minute, "a running pod in pool b", func() bool {
		pods, err := e.cs.CoreV1().Pods(nsB).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				return true
			}
		}
		return false
	})
	if err := e.cs.RbacV1().RoleBindings(nsB).Delete(ctx, "conveyor-pool", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "pool b drained", func() bool { return !sched.Stats()[1].Healthy })
	r := hs.waitRuns(1, 10*time.Minute)[0]
	place := placement(t, hs, r)
	if n := count(place, nsA, "x1", "x2", "x3", "x4"); n != 4 {
		t.Errorf("placement %v: want the x jobs (after the revocation) all on pool a", place)
	}
	st := sched.Stats()[1]
	if st.Healthy || !strings.Contains(st.Reason, "may not create pods") && !strings.Contains(st.Reason, "Unauthorized") {
		t.Errorf("pool b: %+v", st)
	}
}

// A pool whose pods stay Pending (no node has its node-selector's label)
// past its pending deadline is drained although its API answers, and
// the job moves to the other pool without failing.
func TestPoolsPendingDeadline(t *testing.T) {
	e := newPoolEnv(t)
	nsStuck, nsOK := e.namespace("stuck"), e.namespace("ok")
	stuck := e.poolWith(pool.Spec{Name: "stuck", Kind: pool.Kubernetes, Namespace: nsStuck, Capacity: 1, ProbeInterval: time.Minute, // the back-off outlasts the test
		PendingDeadline: 5 * time.Second, NodeSelector: map[string]string{"conveyor.dev/no-such-node": "x"}}, e.admin)
	hs, sched := e.server(parallelJobs("j", 1, "", 0, 0), stuck, e.pool("ok", e.admin, nsOK, 1, false))
	r := hs.waitRuns(1, 6*time.Minute)[0]
	place := placement(t, hs, r)
	log := hs.jobLog(r.ID, "j1")
	if place["j1"] != nsOK || !strings.Contains(log, "Created pod "+nsStuck+"/") || !strings.Contains(log, "still Pending after 5s") {
		t.Errorf("placement %v; log:\n%s", place, log)
	}
	if j := hs.jobs(r.ID)["j1"]; j.Attempt != 2 {
		t.Errorf("attempt %d, want 2 (handed back once)", j.Attempt)
	}
	if st := sched.Stats()[0]; st.Healthy || !strings.Contains(st.Reason, "no room") {
		t.Errorf("pool stuck: %+v", st)
	}
}

// serviceAccount makes, in ns, a ServiceAccount that may run job pods
// there (a Role and the RoleBinding conveyor-pool; get on its namespace
// through a ClusterRole), and returns a client configuration with a
// token minted for it (TokenRequest), read back from a kubeconfig file.
func (e *poolEnv) serviceAccount(ns string) *rest.Config {
	t := e.t
	t.Helper()
	ctx := context.Background()
	name := "conveyor-pool"
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods/attach", "pods/exec"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
	}
	if _, err := e.cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: subject}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster := ns + "-get"
	if _, err := e.cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: cluster},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{ns}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cluster},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cluster}, Subjects: subject}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), cluster, metav1.DeleteOptions{})
		_ = e.cs.RbacV1().ClusterRoles().Delete(context.Background(), cluster, metav1.DeleteOptions{})
	})
	exp := int64(3600)
	tok, err := e.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: e.admin.Host, CertificateAuthorityData: caData(t, e.admin)}
	kc.AuthInfos["pool-b"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["pool-b"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "pool-b", Namespace: ns}
	kc.CurrentContext = "pool-b"
	file := filepath.Join(t.TempDir(), "pool-b.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, file); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubernetes.LoadConfig(file, "pool-b")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func caData(t *testing.T, cfg *rest.Config) []byte {
	t.Helper()
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	b, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
