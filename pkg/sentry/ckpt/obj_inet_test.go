package ckpt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// stateNestedUsed lists every path read through stateNestedInt (obj_inet.go).
func stateNestedUsed() []stateNestedUse {
	return []stateNestedUse{
		{new(tcp.Endpoint), []string{"acceptQueue", "capacity"}},
		{new(tcp.Endpoint), []string{"sndQueueInfo", "TCPSndBufState", "SndBufUsed"}},
	}
}

// TestStateNestedUsed fails when a gVisor bump renames, removes or retypes a field the inet
// capture reads through stateNestedInt: a listener's backlog, a TCP end's unacknowledged bytes.
func TestStateNestedUsed(t *testing.T) {
	for _, u := range stateNestedUsed() {
		if _, err := stateNestedInt(u.obj, u.path...); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := stateNestedInt(new(tcp.Endpoint), "acceptQueue", "nosuchfield"); err == nil {
		t.Errorf("a missing nested field was read")
	}
}

// TestInetAddrs: image addresses survive the sockaddr and netstack conversions, v4-mapped
// addresses become IPv4 for netstack and back for an AF_INET6 socket.
func TestInetAddrs(t *testing.T) {
	a4 := imgfmt.InetAddr{Port: 8080, Addr: []byte{127, 0, 0, 1}}
	sa := linux.SockAddrInet{}
	sa.UnmarshalUnsafe(sockaddrBytes(linux.AF_INET, a4))
	if got := inetAddrOf(&sa); got.Port != 8080 || !bytes.Equal(got.Addr, a4.Addr) || sa.Family != linux.AF_INET {
		t.Errorf("AF_INET round trip: %+v from %+v", got, sa)
	}
	mapped := imgfmt.InetAddr{Port: 9, Addr: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}, Scope: 0}
	sa6 := linux.SockAddrInet6{}
	sa6.UnmarshalUnsafe(sockaddrBytes(linux.AF_INET6, mapped))
	if got := inetAddrOf(&sa6); got.Port != 9 || !bytes.Equal(got.Addr, mapped.Addr) {
		t.Errorf("AF_INET6 round trip: %+v", got)
	}
	n := tcpipAddr(mapped)
	if n.Addr != tcpip.AddrFrom4([4]byte{10, 1, 2, 3}) || n.Port != 9 {
		t.Errorf("tcpipAddr(v4-mapped) = %v", n)
	}
	if back := inetAddrFromTCPIP(n, linux.AF_INET6); !bytes.Equal(back.Addr, mapped.Addr) {
		t.Errorf("inetAddrFromTCPIP = %v", back)
	}
	if back := inetAddrFromTCPIP(n, linux.AF_INET); !bytes.Equal(back.Addr, []byte{10, 1, 2, 3}) {
		t.Errorf("inetAddrFromTCPIP(AF_INET) = %v", back)
	}
}

// TestKnownSockOptions: a thaw refuses (EINVAL) an option no freeze records.
func TestKnownSockOptions(t *testing.T) {
	ok := []imgfmt.SockOption{{Level: linux.SOL_SOCKET, Name: linux.SO_REUSEADDR}, {Level: linux.SOL_TCP, Name: linux.TCP_NODELAY}}
	if err := knownSockOptions(ok, sockOptionsCommon, sockOptionsTCP); err != nil {
		t.Errorf("known options refused: %v", err)
	}
	bad := append(ok, imgfmt.SockOption{Level: linux.SOL_SOCKET, Name: linux.SO_RCVBUFFORCE})
	if err := knownSockOptions(bad, sockOptionsCommon, sockOptionsTCP); !errors.Is(err, errInvalidImage) {
		t.Errorf("SO_RCVBUFFORCE: %v, want an invalid image", err)
	}
}
