package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
)

// stream is one bidirectional gRPC stream on a context of its own. Its
// messages are received on a goroutine of its own, so that the stream's
// loop waits for them together with its other events.
type stream[Req, Res any] struct {
	grpc.BidiStreamingClient[Req, Res]
	cancel context.CancelFunc
	// received carries what the server sent, in order.
	received chan *Res
	// ended receives, once, why the stream ended: the context's error
	// when it ended first.
	ended chan error
	done  chan struct{}
}

// open opens a stream with newStream, a generated client's method, and
// opts, and starts receiving. The caller closes it.
func open[Req, Res any](ctx context.Context, newStream func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Res], error), opts ...grpc.CallOption) (*stream[Req, Res], error) {
	ctx, cancel := context.WithCancel(ctx)
	bidi, err := newStream(ctx, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening the stream: %w", err)
	}
	s := &stream[Req, Res]{
		BidiStreamingClient: bidi,
		cancel:              cancel,
		received:            make(chan *Res),
		ended:               make(chan error, 1),
		done:                make(chan struct{}),
	}
	go s.receive(ctx)
	return s, nil
}

func (s *stream[Req, Res]) receive(ctx context.Context) {
	defer close(s.done)
	for {
		m, err := s.Recv()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			s.ended <- streamError(err)
			return
		}
		select {
		case s.received <- m:
		case <-ctx.Done():
			s.ended <- ctx.Err()
			return
		}
	}
}

// close ends the stream and waits for its receiving goroutine.
func (s *stream[Req, Res]) close() {
	s.cancel()
	<-s.done
}

// sendFailed says why the stream ended when a Send failed with err.
// grpc-go's Send fails with io.EOF alone once the stream has ended, its
// status going to the receiving side: the server closing the stream would
// otherwise be told (and logged) as a failure of the client's, not as the
// control plane going away. What arrives meanwhile is dropped with the
// stream.
func (s *stream[Req, Res]) sendFailed(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		select {
		case ended := <-s.ended:
			return ended
		case <-s.received:
		}
	}
}

// errServerClosed is how a stream the server ended cleanly fails: the
// server is stopping, and the client reconnects like after any failure.
var errServerClosed = errors.New("the server closed the stream")

// streamError says why receiving failed.
func streamError(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return errServerClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("receiving: %w", err)
}
