// argo-client behaves like ArgoCD's cluster cache against one cluster: discovery of every API
// group, then a list+watch of every resource kind that can be listed and watched (client-go
// dynamic informers), waiting until every cache has synced. It then waits for a ConfigMap that
// the caller creates afterwards to show up in the cache, which proves the watches are live.
//
// It reports on stdout, one JSON object per line:
//
//	{"event":"synced","resources":N,"objects":M,"groups":[...],"names":["deployments.apps",...]}
//	{"event":"seen","configmap":"ns/name","afterMs":T}
//
// and exits 0, or prints the failure on stderr and exits 1. Used by test/e2e/argo-like.test.ts
// through kubegate with a robot's kubeconfig.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argo-client: "+format+"\n", args...)
	os.Exit(1)
}

func emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail("encoding output: %v", err)
	}
	fmt.Println(string(b))
}

func hasVerbs(r metav1.APIResource, want ...string) bool {
	have := map[string]bool{}
	for _, v := range r.Verbs {
		have[v] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig (a kubegate fleet kubeconfig)")
	expect := flag.String("expect-configmap", "", "namespace/name of a ConfigMap to wait for after the caches synced")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after this long")
	flag.Parse()
	if *kubeconfig == "" || !strings.Contains(*expect, "/") {
		fail("usage: argo-client -kubeconfig FILE -expect-configmap NAMESPACE/NAME")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig: %v", err)
	}
	// ArgoCD raises client-go's default rate limits for its cluster cache; so do we.
	cfg.QPS = 50
	cfg.Burst = 100
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		fail("discovery client: %v", err)
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		fail("discovery of API groups: %v", err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		// A partial answer means some group's discovery failed: ArgoCD would show the cluster
		// as degraded, and so do we.
		fail("discovery of resources: %v", err)
	}
	var gvrs []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			fail("group version %q: %v", l.GroupVersion, err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r, "list", "watch") {
				continue
			}
			gvrs = append(gvrs, gv.WithResource(r.Name))
		}
	}
	if len(gvrs) == 0 {
		fail("discovery found no resource that can be listed and watched")
	}

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		fail("dynamic client: %v", err)
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	informers := map[schema.GroupVersionResource]cache.SharedIndexInformer{}
	for _, gvr := range gvrs {
		informers[gvr] = factory.ForResource(gvr).Informer()
	}
	cmGVR := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cm, ok := informers[cmGVR]
	if !ok {
		fail("configmaps are not among the listed resources")
	}
	seen := make(chan struct{})
	var closed bool
	check := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if ok && !closed && u.GetNamespace()+"/"+u.GetName() == *expect {
			closed = true
			close(seen)
		}
	}
	if _, err := cm.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, obj any) { check(obj) },
	}); err != nil {
		fail("event handler: %v", err)
	}

	factory.Start(ctx.Done())
	synced := factory.WaitForCacheSync(ctx.Done())
	var notSynced []string
	for gvr, ok := range synced {
		if !ok {
			notSynced = append(notSynced, gvr.String())
		}
	}
	if len(notSynced) > 0 || len(synced) != len(gvrs) {
		sort.Strings(notSynced)
		fail("%d of %d caches did not sync: %s", len(gvrs)-len(synced)+len(notSynced), len(gvrs), strings.Join(notSynced, ", "))
	}
	objects := 0
	names := make([]string, 0, len(gvrs))
	for gvr, inf := range informers {
		objects += len(inf.GetStore().List())
		// The way `kubectl api-resources -o name` names a resource.
		name := gvr.Resource
		if gvr.Group != "" {
			name += "." + gvr.Group
		}
		names = append(names, name)
	}
	sort.Strings(names)
	groupNames := make([]string, 0, len(groups.Groups))
	for _, g := range groups.Groups {
		groupNames = append(groupNames, g.Name)
	}
	syncedAt := time.Now()
	emit(map[string]any{
		"event":     "synced",
		"resources": len(gvrs),
		"objects":   objects,
		"groups":    groupNames,
		"names":     names,
	})

	select {
	case <-seen:
		emit(map[string]any{
			"event":     "seen",
			"configmap": *expect,
			"afterMs":   time.Since(syncedAt).Milliseconds(),
		})
	case <-ctx.Done():
		fail("ConfigMap %s never reached the cache: %v", *expect, ctx.Err())
	}
}
