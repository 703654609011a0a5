package fsm

import "context"

type contextT = context.Context

var bg = context.Background()

func withCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg) }
