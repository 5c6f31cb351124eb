/*
 * bcryptprimitives.dll for wine 8, which lacks it: Go's runtime (1.24 and
 * later) asks ProcessPrng for its random bytes and will not start without
 * it. ProcessPrng here fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), the system's generator. Wine 10 ships the DLL, and
 * .ci/wine.sh builds this one only where the prefix has none.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
