package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// session is one ADS stream: what it has told the server. Only Run's
// goroutine uses it.
type session struct {
	c        *Client
	stream   discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	nodeSent bool
	// sent are the names each watch has subscribed to on this stream; a
	// watch missing has sent no request yet.
	sent map[*Watch]map[string]struct{}
}

// sync sends what the subscriptions changed since the last sync: a
// watch's first request, or the names it subscribed and unsubscribed.
func (s *session) sync() error {
	for _, req := range s.changes() {
		if err := s.send(req); err != nil {
			return err
		}
	}
	return nil
}

// changes computes the requests sync sends and records them as sent.
func (s *session) changes() []*discoveryv3.DeltaDiscoveryRequest {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	var reqs []*discoveryv3.DeltaDiscoveryRequest
	for _, w := range s.c.order {
		sent, started := s.sent[w]
		if !started {
			// A first request naming nothing would be a legacy wildcard
			// subscription: wait for a name.
			if len(w.want) == 0 {
				continue
			}
			reqs = append(reqs, s.first(w))
			continue
		}
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: w.typeURL}
		for _, name := range w.subscriptionLocked() {
			if _, ok := sent[name]; !ok {
				req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, name)
			}
		}
		for name := range sent {
			if _, ok := w.want[name]; !ok {
				req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, name)
			}
		}
		if len(req.ResourceNamesSubscribe)+len(req.ResourceNamesUnsubscribe) == 0 {
			continue
		}
		slices.Sort(req.ResourceNamesUnsubscribe)
		dropped := req.ResourceNamesUnsubscribe
		if slices.Contains(dropped, Wildcard) {
			dropped = slices.Collect(maps.Keys(w.versions))
		}
		w.forgetLocked(dropped)
		s.sent[w] = maps.Clone(w.want)
		reqs = append(reqs, req)
	}
	return reqs
}

// first is a watch's first request on the stream: its whole subscription,
// and the versions it holds, so that the server sends only what changed
// since the last stream. c.mu is held.
func (s *session) first(w *Watch) *discoveryv3.DeltaDiscoveryRequest {
	// What was unsubscribed while no stream was open is forgotten now.
	w.forgetLocked(slices.Collect(maps.Keys(w.versions)))
	s.sent[w] = maps.Clone(w.want)
	return &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:                 w.typeURL,
		ResourceNamesSubscribe:  w.subscriptionLocked(),
		InitialResourceVersions: maps.Clone(w.versions),
	}
}

// answer hands a response to its watch's handler, then ACKs or NACKs it.
// A response the client cannot decode is logged at error level: the server
// sends what this client cannot read. One the handler refuses is a config
// problem the server logs too, at warning level.
func (s *session) answer(resp *discoveryv3.DeltaDiscoveryResponse) error {
	err := s.apply(resp)
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	if err != nil {
		level, msg := slog.LevelWarn, "rejecting xDS response (NACK)"
		if errors.As(err, new(undecodable)) {
			level, msg = slog.LevelError, "cannot decode xDS response; rejecting it (NACK)"
		}
		s.c.log.Log(context.Background(), level, msg, "type", resp.GetTypeUrl(), "nonce", resp.GetNonce(), "error", err)
		req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
	}
	return s.send(req)
}

// undecodable is the error of a response the client could not decode.
type undecodable struct{ error }

func (u undecodable) Unwrap() error { return u.error }

// apply decodes a response and runs its handler, and records on the watch
// whether it has accepted a response (see Client.Err).
func (s *session) apply(resp *discoveryv3.DeltaDiscoveryResponse) error {
	w := s.c.watch(resp.GetTypeUrl())
	if w == nil {
		return fmt.Errorf("no watch for type %s", resp.GetTypeUrl())
	}
	s.c.mu.Lock()
	resources, removed, absent := w.relevantLocked(resp)
	s.c.mu.Unlock()
	err := w.apply(resources, removed, absent)
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if err != nil {
		if !w.synced {
			w.rejected = err
		}
		return err
	}
	w.synced, w.rejected = true, nil
	return nil
}

// send sends a request; the node goes on the stream's first, as Envoy
// does.
func (s *session) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node = s.c.node
		s.nodeSent = true
	}
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("sending a %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}
