package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"sigs.k8s.io/kwok/kustomize/crd"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// writeStages writes kwok's default stages (as kwokctl uses them) to path:
// nodes become Ready with addresses and the kubelet port, then keep a lease;
// pods become Running and Ready at once, Job pods complete, deleted pods go.
func writeStages(path string) error {
	docs := []string{
		nodefast.DefaultNodeInit,
		nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644)
}

// crdsByKind are the CustomResourceDefinitions kwok can watch (--enable-crds).
// Stage is absent: the stages come from the config file.
var crdsByKind = map[string][]byte{
	"Attach":             crd.Attach,
	"ClusterAttach":      crd.ClusterAttach,
	"Exec":               crd.Exec,
	"ClusterExec":        crd.ClusterExec,
	"Logs":               crd.Logs,
	"ClusterLogs":        crd.ClusterLogs,
	"PortForward":        crd.PortForward,
	"ClusterPortForward": crd.ClusterPortForward,
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs of kinds and waits until they are established,
// so kwok's watches find them.
func installCRDs(ctx context.Context, kubeconfig string, kinds []string) error {
	if len(kinds) == 0 {
		return nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := client.Resource(crdGVR)
	var names []string
	for _, kind := range kinds {
		if kind == "Exec" {
			// The front (front.go) answers exec from the config files only.
			return fmt.Errorf("--crds: Exec is not supported, configure exec with ClusterExec in --config")
		}
		data, ok := crdsByKind[kind]
		if !ok {
			return fmt.Errorf("--crds: unknown kind %q", kind)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			return fmt.Errorf("CRD for %s: %w", kind, err)
		}
		if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for !established(ctx, crds, name) {
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established within 30s", name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(ctx context.Context, crds dynamic.NamespaceableResourceInterface, name string) bool {
	obj, err := crds.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
