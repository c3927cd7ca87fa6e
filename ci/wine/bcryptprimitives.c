/*
 * Stand-in for Windows' bcryptprimitives.dll, for Wine versions that lack it (Wine 8.0, as
 * shipped by Debian bookworm). Rust's std (>= 1.78) imports `ProcessPrng` from that DLL on
 * Windows; without it every test binary exits with status 53 before `main`.
 *
 * It exports the one function std needs and forwards to BCryptGenRandom with the system
 * preferred RNG, which Wine implements. Used only by ci/windows-tests.sh, never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T len)
{
    while (len) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        out += chunk;
        len -= chunk;
    }
    return TRUE;
}
