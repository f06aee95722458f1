//go:build amd64 && !purego

#include "textflag.h"

// Vector constants, each repeated in all eight lanes so that they can be
// memory operands of 256-bit instructions. The exp coefficients are the
// Cephes expf ones; the erf coefficients (a polynomial below |z| = 0.9277
// and log(erfc) above it) are those of a published faithfully-rounded
// erff. Both are documented and checked against float64 math in
// simd_test.go.
#define C_expHi vconst<>+0(SB)
#define C_expLo vconst<>+32(SB)
#define C_log2e vconst<>+64(SB)
#define C_ln2hi vconst<>+96(SB)
#define C_ln2lo vconst<>+128(SB)
#define C_ep0 vconst<>+160(SB)
#define C_ep1 vconst<>+192(SB)
#define C_ep2 vconst<>+224(SB)
#define C_ep3 vconst<>+256(SB)
#define C_ep4 vconst<>+288(SB)
#define C_ep5 vconst<>+320(SB)
#define C_one vconst<>+352(SB)
#define C_rsqrt2 vconst<>+384(SB)
#define C_absmask vconst<>+416(SB)
#define C_split vconst<>+448(SB)
#define C_s0 vconst<>+480(SB)
#define C_s1 vconst<>+512(SB)
#define C_s2 vconst<>+544(SB)
#define C_s3 vconst<>+576(SB)
#define C_s4 vconst<>+608(SB)
#define C_s5 vconst<>+640(SB)
#define C_b0 vconst<>+672(SB)
#define C_b1 vconst<>+704(SB)
#define C_b2 vconst<>+736(SB)
#define C_b3 vconst<>+768(SB)
#define C_b4 vconst<>+800(SB)
#define C_b5 vconst<>+832(SB)
#define C_b6 vconst<>+864(SB)
#define C_half vconst<>+896(SB)
#define C_neginf vconst<>+928(SB)
#define C_negtwoc vconst<>+960(SB)
#define C_gk3 vconst<>+992(SB)
#define C_negone vconst<>+1024(SB)

DATA vconst<>+0(SB)/4, $0x42b0c0a5
DATA vconst<>+4(SB)/4, $0x42b0c0a5
DATA vconst<>+8(SB)/4, $0x42b0c0a5
DATA vconst<>+12(SB)/4, $0x42b0c0a5
DATA vconst<>+16(SB)/4, $0x42b0c0a5
DATA vconst<>+20(SB)/4, $0x42b0c0a5
DATA vconst<>+24(SB)/4, $0x42b0c0a5
DATA vconst<>+28(SB)/4, $0x42b0c0a5
DATA vconst<>+32(SB)/4, $0xc2aeac4f
DATA vconst<>+36(SB)/4, $0xc2aeac4f
DATA vconst<>+40(SB)/4, $0xc2aeac4f
DATA vconst<>+44(SB)/4, $0xc2aeac4f
DATA vconst<>+48(SB)/4, $0xc2aeac4f
DATA vconst<>+52(SB)/4, $0xc2aeac4f
DATA vconst<>+56(SB)/4, $0xc2aeac4f
DATA vconst<>+60(SB)/4, $0xc2aeac4f
DATA vconst<>+64(SB)/4, $0x3fb8aa3b
DATA vconst<>+68(SB)/4, $0x3fb8aa3b
DATA vconst<>+72(SB)/4, $0x3fb8aa3b
DATA vconst<>+76(SB)/4, $0x3fb8aa3b
DATA vconst<>+80(SB)/4, $0x3fb8aa3b
DATA vconst<>+84(SB)/4, $0x3fb8aa3b
DATA vconst<>+88(SB)/4, $0x3fb8aa3b
DATA vconst<>+92(SB)/4, $0x3fb8aa3b
DATA vconst<>+96(SB)/4, $0x3f318000
DATA vconst<>+100(SB)/4, $0x3f318000
DATA vconst<>+104(SB)/4, $0x3f318000
DATA vconst<>+108(SB)/4, $0x3f318000
DATA vconst<>+112(SB)/4, $0x3f318000
DATA vconst<>+116(SB)/4, $0x3f318000
DATA vconst<>+120(SB)/4, $0x3f318000
DATA vconst<>+124(SB)/4, $0x3f318000
DATA vconst<>+128(SB)/4, $0xb95e8083
DATA vconst<>+132(SB)/4, $0xb95e8083
DATA vconst<>+136(SB)/4, $0xb95e8083
DATA vconst<>+140(SB)/4, $0xb95e8083
DATA vconst<>+144(SB)/4, $0xb95e8083
DATA vconst<>+148(SB)/4, $0xb95e8083
DATA vconst<>+152(SB)/4, $0xb95e8083
DATA vconst<>+156(SB)/4, $0xb95e8083
DATA vconst<>+160(SB)/4, $0x39506967
DATA vconst<>+164(SB)/4, $0x39506967
DATA vconst<>+168(SB)/4, $0x39506967
DATA vconst<>+172(SB)/4, $0x39506967
DATA vconst<>+176(SB)/4, $0x39506967
DATA vconst<>+180(SB)/4, $0x39506967
DATA vconst<>+184(SB)/4, $0x39506967
DATA vconst<>+188(SB)/4, $0x39506967
DATA vconst<>+192(SB)/4, $0x3ab743ce
DATA vconst<>+196(SB)/4, $0x3ab743ce
DATA vconst<>+200(SB)/4, $0x3ab743ce
DATA vconst<>+204(SB)/4, $0x3ab743ce
DATA vconst<>+208(SB)/4, $0x3ab743ce
DATA vconst<>+212(SB)/4, $0x3ab743ce
DATA vconst<>+216(SB)/4, $0x3ab743ce
DATA vconst<>+220(SB)/4, $0x3ab743ce
DATA vconst<>+224(SB)/4, $0x3c088908
DATA vconst<>+228(SB)/4, $0x3c088908
DATA vconst<>+232(SB)/4, $0x3c088908
DATA vconst<>+236(SB)/4, $0x3c088908
DATA vconst<>+240(SB)/4, $0x3c088908
DATA vconst<>+244(SB)/4, $0x3c088908
DATA vconst<>+248(SB)/4, $0x3c088908
DATA vconst<>+252(SB)/4, $0x3c088908
DATA vconst<>+256(SB)/4, $0x3d2aa9c1
DATA vconst<>+260(SB)/4, $0x3d2aa9c1
DATA vconst<>+264(SB)/4, $0x3d2aa9c1
DATA vconst<>+268(SB)/4, $0x3d2aa9c1
DATA vconst<>+272(SB)/4, $0x3d2aa9c1
DATA vconst<>+276(SB)/4, $0x3d2aa9c1
DATA vconst<>+280(SB)/4, $0x3d2aa9c1
DATA vconst<>+284(SB)/4, $0x3d2aa9c1
DATA vconst<>+288(SB)/4, $0x3e2aaaaa
DATA vconst<>+292(SB)/4, $0x3e2aaaaa
DATA vconst<>+296(SB)/4, $0x3e2aaaaa
DATA vconst<>+300(SB)/4, $0x3e2aaaaa
DATA vconst<>+304(SB)/4, $0x3e2aaaaa
DATA vconst<>+308(SB)/4, $0x3e2aaaaa
DATA vconst<>+312(SB)/4, $0x3e2aaaaa
DATA vconst<>+316(SB)/4, $0x3e2aaaaa
DATA vconst<>+320(SB)/4, $0x3f000000
DATA vconst<>+324(SB)/4, $0x3f000000
DATA vconst<>+328(SB)/4, $0x3f000000
DATA vconst<>+332(SB)/4, $0x3f000000
DATA vconst<>+336(SB)/4, $0x3f000000
DATA vconst<>+340(SB)/4, $0x3f000000
DATA vconst<>+344(SB)/4, $0x3f000000
DATA vconst<>+348(SB)/4, $0x3f000000
DATA vconst<>+352(SB)/4, $0x3f800000
DATA vconst<>+356(SB)/4, $0x3f800000
DATA vconst<>+360(SB)/4, $0x3f800000
DATA vconst<>+364(SB)/4, $0x3f800000
DATA vconst<>+368(SB)/4, $0x3f800000
DATA vconst<>+372(SB)/4, $0x3f800000
DATA vconst<>+376(SB)/4, $0x3f800000
DATA vconst<>+380(SB)/4, $0x3f800000
DATA vconst<>+384(SB)/4, $0x3f3504f3
DATA vconst<>+388(SB)/4, $0x3f3504f3
DATA vconst<>+392(SB)/4, $0x3f3504f3
DATA vconst<>+396(SB)/4, $0x3f3504f3
DATA vconst<>+400(SB)/4, $0x3f3504f3
DATA vconst<>+404(SB)/4, $0x3f3504f3
DATA vconst<>+408(SB)/4, $0x3f3504f3
DATA vconst<>+412(SB)/4, $0x3f3504f3
DATA vconst<>+416(SB)/4, $0x7fffffff
DATA vconst<>+420(SB)/4, $0x7fffffff
DATA vconst<>+424(SB)/4, $0x7fffffff
DATA vconst<>+428(SB)/4, $0x7fffffff
DATA vconst<>+432(SB)/4, $0x7fffffff
DATA vconst<>+436(SB)/4, $0x7fffffff
DATA vconst<>+440(SB)/4, $0x7fffffff
DATA vconst<>+444(SB)/4, $0x7fffffff
DATA vconst<>+448(SB)/4, $0x3f6d8000
DATA vconst<>+452(SB)/4, $0x3f6d8000
DATA vconst<>+456(SB)/4, $0x3f6d8000
DATA vconst<>+460(SB)/4, $0x3f6d8000
DATA vconst<>+464(SB)/4, $0x3f6d8000
DATA vconst<>+468(SB)/4, $0x3f6d8000
DATA vconst<>+472(SB)/4, $0x3f6d8000
DATA vconst<>+476(SB)/4, $0x3f6d8000
DATA vconst<>+480(SB)/4, $0xba1c7000
DATA vconst<>+484(SB)/4, $0xba1c7000
DATA vconst<>+488(SB)/4, $0xba1c7000
DATA vconst<>+492(SB)/4, $0xba1c7000
DATA vconst<>+496(SB)/4, $0xba1c7000
DATA vconst<>+500(SB)/4, $0xba1c7000
DATA vconst<>+504(SB)/4, $0xba1c7000
DATA vconst<>+508(SB)/4, $0xba1c7000
DATA vconst<>+512(SB)/4, $0x3ba38d2c
DATA vconst<>+516(SB)/4, $0x3ba38d2c
DATA vconst<>+520(SB)/4, $0x3ba38d2c
DATA vconst<>+524(SB)/4, $0x3ba38d2c
DATA vconst<>+528(SB)/4, $0x3ba38d2c
DATA vconst<>+532(SB)/4, $0x3ba38d2c
DATA vconst<>+536(SB)/4, $0x3ba38d2c
DATA vconst<>+540(SB)/4, $0x3ba38d2c
DATA vconst<>+544(SB)/4, $0xbcdb48d9
DATA vconst<>+548(SB)/4, $0xbcdb48d9
DATA vconst<>+552(SB)/4, $0xbcdb48d9
DATA vconst<>+556(SB)/4, $0xbcdb48d9
DATA vconst<>+560(SB)/4, $0xbcdb48d9
DATA vconst<>+564(SB)/4, $0xbcdb48d9
DATA vconst<>+568(SB)/4, $0xbcdb48d9
DATA vconst<>+572(SB)/4, $0xbcdb48d9
DATA vconst<>+576(SB)/4, $0x3de70e22
DATA vconst<>+580(SB)/4, $0x3de70e22
DATA vconst<>+584(SB)/4, $0x3de70e22
DATA vconst<>+588(SB)/4, $0x3de70e22
DATA vconst<>+592(SB)/4, $0x3de70e22
DATA vconst<>+596(SB)/4, $0x3de70e22
DATA vconst<>+600(SB)/4, $0x3de70e22
DATA vconst<>+604(SB)/4, $0x3de70e22
DATA vconst<>+608(SB)/4, $0xbec09380
DATA vconst<>+612(SB)/4, $0xbec09380
DATA vconst<>+616(SB)/4, $0xbec09380
DATA vconst<>+620(SB)/4, $0xbec09380
DATA vconst<>+624(SB)/4, $0xbec09380
DATA vconst<>+628(SB)/4, $0xbec09380
DATA vconst<>+632(SB)/4, $0xbec09380
DATA vconst<>+636(SB)/4, $0xbec09380
DATA vconst<>+640(SB)/4, $0x3e0375d4
DATA vconst<>+644(SB)/4, $0x3e0375d4
DATA vconst<>+648(SB)/4, $0x3e0375d4
DATA vconst<>+652(SB)/4, $0x3e0375d4
DATA vconst<>+656(SB)/4, $0x3e0375d4
DATA vconst<>+660(SB)/4, $0x3e0375d4
DATA vconst<>+664(SB)/4, $0x3e0375d4
DATA vconst<>+668(SB)/4, $0x3e0375d4
DATA vconst<>+672(SB)/4, $0xb7910000
DATA vconst<>+676(SB)/4, $0xb7910000
DATA vconst<>+680(SB)/4, $0xb7910000
DATA vconst<>+684(SB)/4, $0xb7910000
DATA vconst<>+688(SB)/4, $0xb7910000
DATA vconst<>+692(SB)/4, $0xb7910000
DATA vconst<>+696(SB)/4, $0xb7910000
DATA vconst<>+700(SB)/4, $0xb7910000
DATA vconst<>+704(SB)/4, $0x39c8e7d9
DATA vconst<>+708(SB)/4, $0x39c8e7d9
DATA vconst<>+712(SB)/4, $0x39c8e7d9
DATA vconst<>+716(SB)/4, $0x39c8e7d9
DATA vconst<>+720(SB)/4, $0x39c8e7d9
DATA vconst<>+724(SB)/4, $0x39c8e7d9
DATA vconst<>+728(SB)/4, $0x39c8e7d9
DATA vconst<>+732(SB)/4, $0x39c8e7d9
DATA vconst<>+736(SB)/4, $0xbb7e8a1c
DATA vconst<>+740(SB)/4, $0xbb7e8a1c
DATA vconst<>+744(SB)/4, $0xbb7e8a1c
DATA vconst<>+748(SB)/4, $0xbb7e8a1c
DATA vconst<>+752(SB)/4, $0xbb7e8a1c
DATA vconst<>+756(SB)/4, $0xbb7e8a1c
DATA vconst<>+760(SB)/4, $0xbb7e8a1c
DATA vconst<>+764(SB)/4, $0xbb7e8a1c
DATA vconst<>+768(SB)/4, $0x3cc6b1a1
DATA vconst<>+772(SB)/4, $0x3cc6b1a1
DATA vconst<>+776(SB)/4, $0x3cc6b1a1
DATA vconst<>+780(SB)/4, $0x3cc6b1a1
DATA vconst<>+784(SB)/4, $0x3cc6b1a1
DATA vconst<>+788(SB)/4, $0x3cc6b1a1
DATA vconst<>+792(SB)/4, $0x3cc6b1a1
DATA vconst<>+796(SB)/4, $0x3cc6b1a1
DATA vconst<>+800(SB)/4, $0xbddaae5c
DATA vconst<>+804(SB)/4, $0xbddaae5c
DATA vconst<>+808(SB)/4, $0xbddaae5c
DATA vconst<>+812(SB)/4, $0xbddaae5c
DATA vconst<>+816(SB)/4, $0xbddaae5c
DATA vconst<>+820(SB)/4, $0xbddaae5c
DATA vconst<>+824(SB)/4, $0xbddaae5c
DATA vconst<>+828(SB)/4, $0xbddaae5c
DATA vconst<>+832(SB)/4, $0xbf228550
DATA vconst<>+836(SB)/4, $0xbf228550
DATA vconst<>+840(SB)/4, $0xbf228550
DATA vconst<>+844(SB)/4, $0xbf228550
DATA vconst<>+848(SB)/4, $0xbf228550
DATA vconst<>+852(SB)/4, $0xbf228550
DATA vconst<>+856(SB)/4, $0xbf228550
DATA vconst<>+860(SB)/4, $0xbf228550
DATA vconst<>+864(SB)/4, $0xbe03ce86
DATA vconst<>+868(SB)/4, $0xbe03ce86
DATA vconst<>+872(SB)/4, $0xbe03ce86
DATA vconst<>+876(SB)/4, $0xbe03ce86
DATA vconst<>+880(SB)/4, $0xbe03ce86
DATA vconst<>+884(SB)/4, $0xbe03ce86
DATA vconst<>+888(SB)/4, $0xbe03ce86
DATA vconst<>+892(SB)/4, $0xbe03ce86
DATA vconst<>+896(SB)/4, $0x3f000000
DATA vconst<>+900(SB)/4, $0x3f000000
DATA vconst<>+904(SB)/4, $0x3f000000
DATA vconst<>+908(SB)/4, $0x3f000000
DATA vconst<>+912(SB)/4, $0x3f000000
DATA vconst<>+916(SB)/4, $0x3f000000
DATA vconst<>+920(SB)/4, $0x3f000000
DATA vconst<>+924(SB)/4, $0x3f000000
DATA vconst<>+928(SB)/4, $0xff800000
DATA vconst<>+932(SB)/4, $0xff800000
DATA vconst<>+936(SB)/4, $0xff800000
DATA vconst<>+940(SB)/4, $0xff800000
DATA vconst<>+944(SB)/4, $0xff800000
DATA vconst<>+948(SB)/4, $0xff800000
DATA vconst<>+952(SB)/4, $0xff800000
DATA vconst<>+956(SB)/4, $0xff800000
DATA vconst<>+960(SB)/4, $0xbfcc422a
DATA vconst<>+964(SB)/4, $0xbfcc422a
DATA vconst<>+968(SB)/4, $0xbfcc422a
DATA vconst<>+972(SB)/4, $0xbfcc422a
DATA vconst<>+976(SB)/4, $0xbfcc422a
DATA vconst<>+980(SB)/4, $0xbfcc422a
DATA vconst<>+984(SB)/4, $0xbfcc422a
DATA vconst<>+988(SB)/4, $0xbfcc422a
DATA vconst<>+992(SB)/4, $0x3d372713
DATA vconst<>+996(SB)/4, $0x3d372713
DATA vconst<>+1000(SB)/4, $0x3d372713
DATA vconst<>+1004(SB)/4, $0x3d372713
DATA vconst<>+1008(SB)/4, $0x3d372713
DATA vconst<>+1012(SB)/4, $0x3d372713
DATA vconst<>+1016(SB)/4, $0x3d372713
DATA vconst<>+1020(SB)/4, $0x3d372713
DATA vconst<>+1024(SB)/4, $0xbf800000
DATA vconst<>+1028(SB)/4, $0xbf800000
DATA vconst<>+1032(SB)/4, $0xbf800000
DATA vconst<>+1036(SB)/4, $0xbf800000
DATA vconst<>+1040(SB)/4, $0xbf800000
DATA vconst<>+1044(SB)/4, $0xbf800000
DATA vconst<>+1048(SB)/4, $0xbf800000
DATA vconst<>+1052(SB)/4, $0xbf800000
GLOBL vconst<>(SB), RODATA|NOPTR, $1056

DATA tailmask<>+0(SB)/4, $0xffffffff
DATA tailmask<>+4(SB)/4, $0xffffffff
DATA tailmask<>+8(SB)/4, $0xffffffff
DATA tailmask<>+12(SB)/4, $0xffffffff
DATA tailmask<>+16(SB)/4, $0xffffffff
DATA tailmask<>+20(SB)/4, $0xffffffff
DATA tailmask<>+24(SB)/4, $0xffffffff
DATA tailmask<>+28(SB)/4, $0xffffffff
DATA tailmask<>+32(SB)/4, $0x00000000
DATA tailmask<>+36(SB)/4, $0x00000000
DATA tailmask<>+40(SB)/4, $0x00000000
DATA tailmask<>+44(SB)/4, $0x00000000
DATA tailmask<>+48(SB)/4, $0x00000000
DATA tailmask<>+52(SB)/4, $0x00000000
DATA tailmask<>+56(SB)/4, $0x00000000
DATA tailmask<>+60(SB)/4, $0x00000000
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// TAILMASK loads into Y15 a lane mask selecting the first CX (1…7) lanes.
#define TAILMASK \
	LEAQ    tailmask<>(SB), AX; \
	MOVQ    $8, DX; \
	SUBQ    CX, DX; \
	VMOVUPS (AX)(DX*4), Y15

// EXP sets X = exp(X) for X <= 88.37, flushing lanes below -87.34 (where
// the result leaves the normal range) to +0. T1, T2, T3 and M are clobbered.
#define EXP(X, T1, T2, T3, M) \
	VCMPPS       $0x1d, C_expLo, X, M; \
	VMINPS       C_expHi, X, X; \
	VMAXPS       C_expLo, X, X; \
	VMULPS       C_log2e, X, T1; \
	VROUNDPS     $0, T1, T1; \
	VFNMADD231PS C_ln2hi, T1, X; \
	VFNMADD231PS C_ln2lo, T1, X; \
	VMOVUPS      C_ep0, T2; \
	VFMADD213PS  C_ep1, X, T2; \
	VFMADD213PS  C_ep2, X, T2; \
	VFMADD213PS  C_ep3, X, T2; \
	VFMADD213PS  C_ep4, X, T2; \
	VFMADD213PS  C_ep5, X, T2; \
	VMULPS       X, X, T3; \
	VFMADD213PS  X, T3, T2; \
	VADDPS       C_one, T2, T2; \
	VCVTPS2DQ    T1, T1; \
	VPSLLD       $23, T1, T1; \
	VPADDD       T1, T2, X; \
	VANDPS       M, X, X

// GELU sets Y0 = Y0·Φ(Y0), Φ(x) = (1 + erf(x/√2))/2. Below |z| = 0.9277
// erf is a polynomial; above, erfc(|z|) = exp(q(|z|)) with a polynomial q,
// so Φ = erfc/2 for x < 0 and 1 − erfc/2 for x > 0 keep their relative
// accuracy in the tails. Y1…Y10 are clobbered.
#define GELU \
	VMULPS       C_rsqrt2, Y0, Y1; \
	VANDPS       C_absmask, Y1, Y2; \
	VMULPS       Y1, Y1, Y3; \
	VMOVUPS      C_s0, Y4; \
	VFMADD213PS  C_s1, Y3, Y4; \
	VFMADD213PS  C_s2, Y3, Y4; \
	VFMADD213PS  C_s3, Y3, Y4; \
	VFMADD213PS  C_s4, Y3, Y4; \
	VFMADD213PS  C_s5, Y3, Y4; \
	VFMADD213PS  Y1, Y1, Y4; \
	VMOVUPS      C_half, Y9; \
	VFMADD213PS  Y9, Y9, Y4; \
	VMOVUPS      C_b0, Y5; \
	VFMADD213PS  C_b1, Y2, Y5; \
	VMOVUPS      C_b2, Y6; \
	VFMADD213PS  C_b3, Y2, Y6; \
	VFMADD213PS  Y6, Y3, Y5; \
	VFMADD213PS  C_b4, Y2, Y5; \
	VFMADD213PS  C_b5, Y2, Y5; \
	VFMADD213PS  C_b6, Y2, Y5; \
	VFMSUB213PS  Y2, Y2, Y5; \
	EXP(Y5, Y6, Y7, Y8, Y10); \
	VMULPS       Y9, Y5, Y5; \
	VMOVUPS      C_one, Y6; \
	VSUBPS       Y5, Y6, Y6; \
	VBLENDVPS    Y0, Y5, Y6, Y6; \
	VCMPPS       $0x1e, C_split, Y2, Y7; \
	VBLENDVPS    Y7, Y6, Y4, Y4; \
	VMULPS       Y4, Y0, Y0

// HSUM leaves the sum of the lanes of Y0 in X0 (lane 0).
#define HSUM \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// func geluAVX2(x *float32, n int)
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX

gelu_loop:
	CMPQ    CX, $8
	JLT     gelu_tail
	VMOVUPS (SI), Y0
	GELU
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     gelu_loop

gelu_tail:
	TESTQ      CX, CX
	JZ         gelu_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	GELU
	VMASKMOVPS Y0, Y15, (SI)

gelu_done:
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS C_neginf, Y0

max_loop:
	CMPQ   CX, $8
	JLT    max_tail
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    max_loop

max_tail:
	TESTQ      CX, CX
	JZ         max_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y1
	VMOVUPS    C_neginf, Y2
	VBLENDVPS  Y15, Y1, Y2, Y1
	VMAXPS     Y1, Y0, Y0

max_done:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func expSumAVX2(x *float32, n int, shift float32) float32
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y11
	VXORPS       Y12, Y12, Y12

exps_loop:
	CMPQ    CX, $8
	JLT     exps_tail
	VMOVUPS (SI), Y0
	VSUBPS  Y11, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS Y0, (SI)
	VADDPS  Y0, Y12, Y12
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     exps_loop

exps_tail:
	TESTQ      CX, CX
	JZ         exps_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VSUBPS     Y11, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y4)
	VANDPS     Y15, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)
	VADDPS     Y0, Y12, Y12

exps_done:
	VMOVAPS Y12, Y0
	HSUM
	VMOVSS  X0, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, n int, s float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y11

scale_loop:
	CMPQ    CX, $8
	JLT     scale_tail
	VMULPS  (SI), Y11, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     scale_loop

scale_tail:
	TESTQ      CX, CX
	JZ         scale_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VMULPS     Y11, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)

scale_done:
	VZEROUPPER
	RET

// func sumAVX2(x *float32, n int) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y5, Y5, Y5

sum_loop16:
	CMPQ   CX, $16
	JLT    sum_loop
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y5, Y5
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    sum_loop16

sum_loop:
	CMPQ   CX, $8
	JLT    sum_tail
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    sum_loop

sum_tail:
	TESTQ      CX, CX
	JZ         sum_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y1
	VADDPS     Y1, Y0, Y0

sum_done:
	VADDPS Y5, Y0, Y0
	HSUM
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevAVX2(x *float32, n int, mean float32) float32
TEXT ·sumSqDevAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mean+16(FP), Y11
	VXORPS       Y0, Y0, Y0
	VXORPS       Y5, Y5, Y5

ssd_loop16:
	CMPQ        CX, $16
	JLT         ssd_loop
	VMOVUPS     (SI), Y1
	VMOVUPS     32(SI), Y2
	VSUBPS      Y11, Y1, Y1
	VSUBPS      Y11, Y2, Y2
	VFMADD231PS Y1, Y1, Y0
	VFMADD231PS Y2, Y2, Y5
	ADDQ        $64, SI
	SUBQ        $16, CX
	JMP         ssd_loop16

ssd_loop:
	CMPQ        CX, $8
	JLT         ssd_tail
	VMOVUPS     (SI), Y1
	VSUBPS      Y11, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ        $32, SI
	SUBQ        $8, CX
	JMP         ssd_loop

ssd_tail:
	TESTQ       CX, CX
	JZ          ssd_done
	TAILMASK
	VMASKMOVPS  (SI), Y15, Y1
	VSUBPS      Y11, Y1, Y1
	VANDPS      Y15, Y1, Y1
	VFMADD231PS Y1, Y1, Y0

ssd_done:
	VADDPS Y5, Y0, Y0
	HSUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func normAVX2(dst, x, gamma, beta *float32, n int, mean, inv float32)
TEXT ·normAVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         gamma+16(FP), R8
	MOVQ         beta+24(FP), R9
	MOVQ         n+32(FP), CX
	VBROADCASTSS mean+40(FP), Y11
	VBROADCASTSS inv+44(FP), Y12
	TESTQ        R9, R9
	JZ           nob_loop

norm_loop:
	CMPQ        CX, $8
	JLT         norm_tail
	VMOVUPS     (SI), Y0
	VSUBPS      Y11, Y0, Y0
	VMULPS      Y12, Y0, Y0
	VMULPS      (R8), Y0, Y0
	VADDPS      (R9), Y0, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	SUBQ        $8, CX
	JMP         norm_loop

norm_tail:
	TESTQ      CX, CX
	JZ         norm_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VMASKMOVPS (R8), Y15, Y1
	VMASKMOVPS (R9), Y15, Y2
	VSUBPS     Y11, Y0, Y0
	VMULPS     Y12, Y0, Y0
	VMULPS     Y1, Y0, Y0
	VADDPS     Y2, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)
	JMP        norm_done

nob_loop:
	CMPQ    CX, $8
	JLT     nob_tail
	VMOVUPS (SI), Y0
	VSUBPS  Y11, Y0, Y0
	VMULPS  Y12, Y0, Y0
	VMULPS  (R8), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	SUBQ    $8, CX
	JMP     nob_loop

nob_tail:
	TESTQ      CX, CX
	JZ         norm_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VMASKMOVPS (R8), Y15, Y1
	VSUBPS     Y11, Y0, Y0
	VMULPS     Y12, Y0, Y0
	VMULPS     Y1, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)

norm_done:
	VZEROUPPER
	RET

// func addAVX2(dst, x *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX

add_loop:
	CMPQ    CX, $8
	JLT     add_tail
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     add_loop

add_tail:
	TESTQ      CX, CX
	JZ         add_done
	TAILMASK
	VMASKMOVPS (DI), Y15, Y0
	VMASKMOVPS (SI), Y15, Y1
	VADDPS     Y1, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)

add_done:
	VZEROUPPER
	RET

// SIGMUL sets Y0 = Y0 / (1 + exp(Y1)): x·sigmoid(-Y1). Y1…Y5 are clobbered.
#define SIGMUL \
	EXP(Y1, Y2, Y3, Y4, Y5); \
	VADDPS C_one, Y1, Y1; \
	VDIVPS Y1, Y0, Y0

// func siluAVX2(x *float32, n int)
TEXT ·siluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX

silu_loop:
	CMPQ    CX, $8
	JLT     silu_tail
	VMOVUPS (SI), Y0
	VMULPS  C_negone, Y0, Y1
	SIGMUL
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     silu_loop

silu_tail:
	TESTQ      CX, CX
	JZ         silu_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VMULPS     C_negone, Y0, Y1
	SIGMUL
	VMASKMOVPS Y0, Y15, (SI)

silu_done:
	VZEROUPPER
	RET

// GELUTANHARG sets Y1 = -2·sqrt(2/π)·(x + 0.044715·x³) for x in Y0, so that
// 0.5·x·(1 + tanh(u)) = x / (1 + exp(Y1)). Y6 is clobbered.
#define GELUTANHARG \
	VMULPS      Y0, Y0, Y6; \
	VMULPS      C_gk3, Y6, Y6; \
	VFMADD213PS Y0, Y0, Y6; \
	VMULPS      C_negtwoc, Y6, Y1

// func geluTanhAVX2(x *float32, n int)
TEXT ·geluTanhAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX

gt_loop:
	CMPQ    CX, $8
	JLT     gt_tail
	VMOVUPS (SI), Y0
	GELUTANHARG
	SIGMUL
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     gt_loop

gt_tail:
	TESTQ      CX, CX
	JZ         gt_done
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	GELUTANHARG
	SIGMUL
	VMASKMOVPS Y0, Y15, (SI)

gt_done:
	VZEROUPPER
	RET
