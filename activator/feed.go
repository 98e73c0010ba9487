package activator

import (
	"fmt"
	"log/slog"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// feed keeps an Activator's revisions in step with the control plane. A
// wildcard CDS watch finds the revision clusters (those carrying revision
// metadata); each one subscribes the EDS watch to its revision's
// "<ns>/<rev>/pods" load assignment, the ready pods whatever the
// revision's mode.
//
// The client calls the handlers one at a time, so the maps need no lock.
type feed struct {
	a   *Activator
	eds *xdsclient.Watch
	log *slog.Logger
	// revisions maps each revision cluster's name to its revision's key.
	revisions map[string]string
	// pods maps each subscribed load assignment's name to its revision's
	// key.
	pods map[string]string
}

// newFeed makes c feed a with every revision the control plane serves:
// configuration from CDS, pods from EDS.
func newFeed(c *xdsclient.Client, a *Activator, log *slog.Logger) *feed {
	f := &feed{a: a, log: log, revisions: map[string]string{}, pods: map[string]string{}}
	// EDS first: it subscribes to nothing until a cluster names a
	// revision, and then the watch must exist.
	f.eds = c.Watch(resource.EndpointType, f.onEndpoints)
	c.Watch(resource.ClusterType, f.onClusters, xdsclient.Wildcard)
	return f
}

// revisionCluster is one cluster of a CDS update, decoded.
type revisionCluster struct {
	name, key  string
	cfg        RevisionConfig
	isRevision bool
}

// onClusters applies a CDS update. Every cluster is decoded before any is
// applied, so that a bad one rejects the update whole and leaves the
// activator as it was.
func (f *feed) onClusters(u xdsclient.Update) error {
	clusters := make([]revisionCluster, 0, len(u.Resources))
	for _, r := range u.Resources {
		c, ok := r.Message.(*clusterv3.Cluster)
		if !ok {
			return fmt.Errorf("cluster %s: got a %T", r.Name, r.Message)
		}
		key, cfg, isRevision, err := revisionOf(c)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", r.Name, err)
		}
		clusters = append(clusters, revisionCluster{name: r.Name, key: key, cfg: cfg, isRevision: isRevision})
	}
	for _, c := range clusters {
		if old, known := f.revisions[c.name]; known && (!c.isRevision || old != c.key) {
			f.forget(c.name)
		}
		if c.isRevision {
			f.set(c)
		}
	}
	for _, name := range u.Removed {
		f.forget(name)
	}
	return nil
}

// set applies a revision cluster, subscribing to its pods the first time.
func (f *feed) set(c revisionCluster) {
	f.a.SetRevision(c.key, c.cfg)
	if _, known := f.revisions[c.name]; known {
		f.log.Debug("revision changed", "revision", c.key, "config", c.cfg)
		return
	}
	f.log.Info("revision added", "revision", c.key, "containerConcurrency", c.cfg.ContainerConcurrency,
		"protocol", c.cfg.Protocol, "timeout", c.cfg.Timeout)
	f.revisions[c.name] = c.key
	pods := translator.PodsName(c.key)
	f.pods[pods] = c.key
	f.eds.Subscribe(pods)
}

// forget drops the revision of a cluster that went away, or stopped being
// a revision's: its waiting requests are refused, new ones get 404.
func (f *feed) forget(cluster string) {
	key, ok := f.revisions[cluster]
	if !ok {
		return
	}
	delete(f.revisions, cluster)
	pods := translator.PodsName(key)
	delete(f.pods, pods)
	f.eds.Unsubscribe(pods)
	f.a.DeleteRevision(key)
	f.log.Info("revision removed", "revision", key)
}

// onEndpoints applies an EDS update, decoded whole before anything is
// applied.
func (f *feed) onEndpoints(u xdsclient.Update) error {
	type revisionPods struct {
		key  string
		pods []model.Endpoint
	}
	updates := make([]revisionPods, 0, len(u.Resources))
	for _, r := range u.Resources {
		key, ok := f.pods[r.Name]
		if !ok {
			continue // a revision forgotten since it was subscribed
		}
		cla, ok := r.Message.(*endpointv3.ClusterLoadAssignment)
		if !ok {
			return fmt.Errorf("load assignment %s: got a %T", r.Name, r.Message)
		}
		pods, err := podsOf(cla)
		if err != nil {
			return fmt.Errorf("load assignment %s: %w", r.Name, err)
		}
		updates = append(updates, revisionPods{key: key, pods: pods})
	}
	for _, up := range updates {
		f.a.SetEndpoints(up.key, up.pods)
		f.log.Debug("revision pods", "revision", up.key, "pods", len(up.pods))
	}
	for _, name := range u.Removed {
		// The revision stays until its cluster goes: it has no pods.
		if key, ok := f.pods[name]; ok {
			f.a.SetEndpoints(key, nil)
		}
	}
	return nil
}
