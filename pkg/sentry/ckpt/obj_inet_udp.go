package ckpt

import (
	"bytes"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Queued UDP datagrams. netstack has no getter for a UDP endpoint's receive queue, and MSG_PEEK
// sees only the first datagram. So the capture reads every datagram (with its source address) and
// puts each back at once, in order, through the endpoint's exported HandlePacket — the call
// netstack's demuxer makes for an arriving packet — with a packet built from the datagram (an
// IPv4 or IPv6 header, a UDP header, the payload; checksum marked verified). A thaw refills the
// rebuilt socket the same way, so the sources come back exactly, whatever they were. What changes:
// the datagrams' receive timestamps (SO_TIMESTAMP) are those of the refill, and IP_PKTINFO shows
// the socket's own address (or loopback if it is bound to the wildcard) as the destination.

// datagramInjector is the part of stack.TransportEndpoint a UDP endpoint exports for delivery.
type datagramInjector interface {
	HandlePacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer)
}

// captureDatagrams reads every datagram queued on s and puts them back.
func captureDatagrams(s inetSocket) ([]imgfmt.Datagram, error) {
	inj, ok := s.ep.(datagramInjector)
	if !ok {
		return nil, fmt.Errorf("UDP endpoint %T has no HandlePacket (gVisor changed): %w", s.ep, errUnsupportedObject)
	}
	local, lerr := s.ep.GetLocalAddress()
	if lerr != nil {
		return nil, fmt.Errorf("UDP local address: %s", lerr)
	}
	type dgram struct {
		from tcpip.FullAddress
		data []byte
	}
	var (
		got   []dgram
		total int
	)
	for {
		var buf bytes.Buffer
		res, err := s.ep.Read(&buf, tcpip.ReadOptions{NeedRemoteAddr: true})
		if err != nil {
			break // ErrWouldBlock: the queue is empty (or closed for reading).
		}
		got = append(got, dgram{from: res.RemoteAddr, data: buf.Bytes()[:res.Count]})
		total += res.Count
	}
	out := make([]imgfmt.Datagram, 0, len(got))
	for _, d := range got {
		injectDatagram(inj, local, d.from, d.data)
		out = append(out, imgfmt.Datagram{From: inetAddrFromTCPIP(d.from, s.family), Data: d.data})
	}
	if total > imgfmt.MaxObjectData {
		return nil, fmt.Errorf("%d queued bytes exceed %d: %w", total, imgfmt.MaxObjectData, errUnsupportedObject)
	}
	return out, nil
}

// refillDatagrams queues the recorded datagrams on a rebuilt UDP socket.
func refillDatagrams(ep tcpip.Endpoint, ds []imgfmt.Datagram) error {
	if len(ds) == 0 {
		return nil
	}
	inj, ok := ep.(datagramInjector)
	if !ok {
		return fmt.Errorf("UDP endpoint %T has no HandlePacket (gVisor changed): %w", ep, errUnsupportedObject)
	}
	local, err := ep.GetLocalAddress()
	if err != nil {
		return fmt.Errorf("UDP local address: %s", err)
	}
	for _, d := range ds {
		injectDatagram(inj, local, tcpipAddr(d.From), d.Data)
	}
	return nil
}

// injectDatagram delivers data from `from` to an endpoint bound at local as if it had just
// arrived. The network protocol follows the source address (an IPv4 source on a dual-stack socket
// arrives as IPv4, as the original did).
func injectDatagram(inj datagramInjector, local, from tcpip.FullAddress, data []byte) {
	to := local.Addr
	v4 := from.Addr.Len() == header.IPv4AddressSize
	if to.Len() != from.Addr.Len() || to.Unspecified() {
		if v4 {
			to = header.IPv4Loopback
		} else {
			to = header.IPv6Loopback
		}
	}
	netLen := header.IPv6MinimumSize
	if v4 {
		netLen = header.IPv4MinimumSize
	}
	b := make([]byte, netLen+header.UDPMinimumSize+len(data))
	udpLen := uint16(header.UDPMinimumSize + len(data))
	if v4 {
		header.IPv4(b).Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
			SrcAddr: from.Addr, DstAddr: to,
		})
	} else {
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength: udpLen, TransportProtocol: header.UDPProtocolNumber, HopLimit: 64,
			SrcAddr: from.Addr, DstAddr: to,
		})
	}
	header.UDP(b[netLen:]).Encode(&header.UDPFields{SrcPort: from.Port, DstPort: local.Port, Length: udpLen})
	copy(b[netLen+header.UDPMinimumSize:], data)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	defer pkt.DecRef()
	pkt.NetworkHeader().Consume(netLen)
	pkt.TransportHeader().Consume(header.UDPMinimumSize)
	if v4 {
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	} else {
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	}
	pkt.TransportProtocolNumber = header.UDPProtocolNumber
	pkt.RXChecksumValidated = true
	inj.HandlePacket(stack.TransportEndpointID{
		LocalPort: local.Port, LocalAddress: to, RemotePort: from.Port, RemoteAddress: from.Addr,
	}, pkt)
}

// familyLoopback returns the loopback address of family in image form.
func familyLoopback(family int) imgfmt.InetAddr {
	if family == linux.AF_INET {
		return imgfmt.InetAddr{Addr: []byte{127, 0, 0, 1}}
	}
	b := make([]byte, 16)
	b[15] = 1
	return imgfmt.InetAddr{Addr: b}
}
