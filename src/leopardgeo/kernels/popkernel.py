"""The compiled yearly kernel of the population simulation (one run; see :mod:`leopardgeo.stages.simulate`).

Array-level code only: it knows no config, no file and no raster.  The
landscape arrives as compressed rows of least-cost distances between
territories (:class:`leopardgeo.stages.poplandscape.TerritoryLandscape`), the
parameters as plain numbers and arrays packed by
:func:`leopardgeo.stages.simulate._kernel_args`.

Why hand-written: an individual-based model's yearly cycle (survival, a
search for the nearest free territory within a random distance, births that
depend on each mother's cubs and on a male nearby, Mendelian inheritance and
a pedigree) is sequential per animal; no library runs it, and a compiled loop
does one 100-year run in about a millisecond, so thousands of runs take
seconds.

State of a run:

* ``st`` (int64, one row per animal): the columns ``_AGE`` .. ``_KSLOT``.
* ``geno`` (int32, one row per animal, ``2 * (n_loci + n_lethal)`` columns):
  the two alleles of every neutral locus, then of every lethal locus.
* ``finb`` (float64): the pedigree inbreeding coefficient of every animal.
* ``kin``: the kinship matrix of the animals on the site's side, indexed by
  slot (``_KSLOT``; slots of dead animals are reused).
* ``counts[side, locus, allele]``: allele counts of the independent animals
  (age >= independence age) on each side, for the genetic census.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Columns of the individual table.
_AGE, _SEX, _TERR, _ORIGIN, _MOTHER, _ALIVE, _CSIDE, _KSLOT, _ID = 0, 1, 2, 3, 4, 5, 6, 7, 8
_NCOL = 9
_VIRTUAL = -2  # territory of an animal settled without a density limit
# Rows of the per-run trajectory array.
ROWS = ("adult_females", "adult_males", "adults", "total", "females", "males", "source_adults")
# Rows of the per-run genetic trajectory array.
GEN_ROWS = ("heterozygosity", "allelic_richness", "inbreeding", "fst", "source_heterozygosity")
# Slots of the integer and float parameter vectors.
(I_YEARS, I_SPATIAL, I_ORIGIN, I_FIRST_BREED, I_INDEP, I_DISPERSE, I_FLOATERS, I_CUBS_DIE, I_LOCI, I_LETHAL,
 I_MAX_AGE, I_K, I_MULTI_PAT, I_SRC_ORIGIN, I_MAX_PEDIGREE, I_N) = range(16)  # fmt: skip
(F_SOURCE_FILL, F_P_BREED, F_FEMALE_SHARE, F_MAX_DISP, F_MATE_REACH, F_B, F_EV_S, F_EV_B, F_EV_RHO, F_POACH,
 F_N) = range(11)  # fmt: skip
# Entries of the per-run counters.
(C_TO_SOURCE, C_FROM_SOURCE, C_PARENT_AGE_SUM, C_PARENTS, C_STATUS, C_LETHAL_DEATHS, C_CATASTROPHES_SITE,
 C_N) = range(8)  # fmt: skip


@njit(cache=True, nogil=True)
def _grow(st, geno, finb, n, extra):  # pragma: no cover - compiled
    """Room for ``n + extra`` animals in the three row-aligned arrays (doubling)."""
    if n + extra <= st.shape[0]:
        return st, geno, finb
    cap = max(2 * st.shape[0], n + extra)
    st2 = np.empty((cap, st.shape[1]), dtype=st.dtype)
    st2[:n] = st[:n]
    g2 = np.empty((cap, geno.shape[1]), dtype=geno.dtype)
    g2[:n] = geno[:n]
    f2 = np.zeros(cap)
    f2[:n] = finb[:n]
    return st2, g2, f2


@njit(cache=True, nogil=True)
def _settle(st, i, spatial, ptr, index, cost, occ, d_max):  # pragma: no cover - compiled
    """Settle animal ``i`` in the nearest free territory within cost ``d_max`` of its origin; return it or -1."""
    if not spatial:
        st[i, _TERR] = _VIRTUAL
        return _VIRTUAL
    o = st[i, _ORIGIN]
    if o < 0:
        return -1
    for j in range(ptr[o], ptr[o + 1]):
        if cost[j] > d_max:
            break
        t = index[j]
        if occ[t] < 0:
            occ[t] = i
            st[i, _TERR] = t
            return t
    return -1


@njit(cache=True, nogil=True)
def _side_of(st, i, spatial, side_f, side_m):  # pragma: no cover - compiled
    """Side (0 site, 1 source) of animal ``i``: of its territory, else of its natal or release territory."""
    if not spatial:
        return 0
    t = st[i, _TERR]
    if t >= 0:
        return side_f[t] if st[i, _SEX] == 0 else side_m[t]
    o = st[i, _ORIGIN]
    if o >= 0:
        return side_f[o]
    return 0


@njit(cache=True, nogil=True)
def _count(geno, i, n_loci, counts, side, sign):  # pragma: no cover - compiled
    for locus in range(n_loci):
        counts[side, locus, geno[i, 2 * locus]] += sign
        counts[side, locus, geno[i, 2 * locus + 1]] += sign


@njit(cache=True, nogil=True)
def _kin_alloc(kin, free, nfree, hw, limit):  # pragma: no cover - compiled
    """A free slot of the kinship matrix (growing it up to ``limit`` slots); return (kin, slot, nfree, hw), slot -1 if full."""
    if nfree > 0:
        return kin, free[nfree - 1], nfree - 1, hw
    if hw >= kin.shape[0]:
        cap = min(2 * kin.shape[0], limit)
        if cap <= hw:
            return kin, -1, nfree, hw
        k2 = np.zeros((cap, cap))
        k2[:hw, :hw] = kin[:hw, :hw]
        kin = k2
    return kin, hw, nfree, hw + 1


@njit(cache=True, nogil=True)
def _simulate_run(
    rng, rng_g, ipar, fpar, ff_ptr, ff_index, ff_cost, fm_ptr, fm_index, fm_cost, region_f, region_m, side_f, side_m,
    site_f, site_m, src_f, src_m, surv, litter_cum, mean_disp, rel_year, rel_sex, rel_age, rel_kind, wild_cum,
    capt_cum, catastrophes, tr_year, tr_sex, tr_dir,
):  # pragma: no cover - compiled  # fmt: skip
    """One run; return the census (7, years + 1), the genetic census (5, years + 1), counters and the final animals.

    ``rng`` draws the demography, ``rng_g`` the genetics (founder alleles,
    Mendelian segregation, the choice of the father among the males within
    reach): without inbreeding depression the demography does not depend on
    the genetics, draw for draw.

    ``surv``: cub, juvenile, subadult, adult female, adult male, floater.
    ``mean_disp``: female, male.  Releases: one row per animal, ``rel_kind``
    0 = wild-born (``wild_cum`` spectrum), 1 = captive-bred (``capt_cum``).
    ``catastrophes``: rows of (yearly probability, survival severity,
    breeding severity).  Translocations: one row per animal, ``tr_dir`` 0 =
    from the source's side to the site, 1 = from the site's side to the source.
    """
    years = ipar[I_YEARS]
    spatial = ipar[I_SPATIAL] == 1
    release_origin = ipar[I_ORIGIN]
    first_breed = ipar[I_FIRST_BREED]
    indep_age = ipar[I_INDEP]
    disperse = ipar[I_DISPERSE] == 1
    floaters = ipar[I_FLOATERS] == 1
    cubs_die = ipar[I_CUBS_DIE] == 1
    n_loci = ipar[I_LOCI]
    n_lethal = ipar[I_LETHAL]
    max_age = ipar[I_MAX_AGE]
    cap_k = ipar[I_K]
    multi_pat = ipar[I_MULTI_PAT] == 1
    source_origin = ipar[I_SRC_ORIGIN]
    max_pedigree = ipar[I_MAX_PEDIGREE]
    source_fill = fpar[F_SOURCE_FILL]
    p_breed = fpar[F_P_BREED]
    female_share = fpar[F_FEMALE_SHARE]
    max_disp = fpar[F_MAX_DISP]
    mate_reach = fpar[F_MATE_REACH]
    b_neutral = fpar[F_B]
    ev_s = fpar[F_EV_S]
    ev_b = fpar[F_EV_B]
    rho = fpar[F_EV_RHO]
    poach = fpar[F_POACH]

    n_f = region_f.size
    n_m = region_m.size
    n_all = n_loci + n_lethal
    n_alleles = max(wild_cum.shape[1], capt_cum.shape[1], 1)
    cap0 = 64 + rel_year.size + n_f + n_m
    st = np.empty((cap0, _NCOL), dtype=np.int64)
    geno = np.zeros((cap0, 2 * n_all), dtype=np.int32)
    finb = np.zeros(cap0)
    n = 0
    occ_f = np.full(n_f, -1, dtype=np.int64)
    occ_m = np.full(n_m, -1, dtype=np.int64)
    traj = np.zeros((7, years + 1), dtype=np.int64)
    gtraj = np.full((5, years + 1), np.nan)
    ctr = np.zeros(C_N, dtype=np.int64)
    counts = np.zeros((2, max(n_loci, 1), n_alleles), dtype=np.int64)
    kin = np.zeros((min(64, max(max_pedigree, 1)), min(64, max(max_pedigree, 1))))
    kfree = np.empty(max_pedigree + 1, dtype=np.int64)
    nfree = 0
    hw = 0
    next_id = 0
    next_lethal = 1  # founder-unique lethal allele ids (0 = none)
    eligible = np.empty(n_m + 16, dtype=np.int64)

    for y in range(years + 1):
        # ---------------------------------------------------------------- this year's environment, per side
        s_mult = np.ones(2)
        b_mult = np.ones(2)
        s_add = np.zeros(2)
        b_add = np.zeros(2)
        if y > 0:
            if ev_s > 0 or ev_b > 0:
                z0 = rng.standard_normal()
                z1 = rho * z0 + math.sqrt(max(0.0, 1.0 - rho * rho)) * rng.standard_normal()
                w0 = rng.standard_normal()
                w1 = rho * w0 + math.sqrt(max(0.0, 1.0 - rho * rho)) * rng.standard_normal()
                s_add[0] = ev_s * z0
                s_add[1] = ev_s * z1
                b_add[0] = ev_b * w0
                b_add[1] = ev_b * w1
            for side in range(2):
                for c in range(catastrophes.shape[0]):
                    if rng.random() < catastrophes[c, 0]:
                        s_mult[side] *= 1.0 - catastrophes[c, 1]
                        b_mult[side] *= 1.0 - catastrophes[c, 2]
                        if side == 0:
                            ctr[C_CATASTROPHES_SITE] += 1

        # ---------------------------------------------------------------- source population at year 0
        if y == 0 and spatial and source_fill > 0:
            for sex in range(2):
                region = region_f if sex == 0 else region_m
                occ = occ_f if sex == 0 else occ_m
                s = surv[3 + sex]
                for t in range(region.size):
                    if region[t] != 2 or rng.random() >= source_fill:
                        continue
                    k = 0
                    if 0 < s < 1:
                        k = math.floor(math.log(1.0 - rng.random()) / math.log(s))
                    st, geno, finb = _grow(st, geno, finb, n, 1)
                    st[n, _AGE] = first_breed + k
                    if max_age > 0 and st[n, _AGE] > max_age:
                        st[n, _AGE] = max_age
                    st[n, _SEX] = sex
                    st[n, _TERR] = t
                    st[n, _ORIGIN] = t if sex == 0 else -1
                    st[n, _MOTHER] = -1
                    st[n, _ALIVE] = 1
                    st[n, _CSIDE] = -1
                    st[n, _KSLOT] = -1
                    st[n, _ID] = next_id
                    next_id += 1
                    finb[n] = 0.0
                    for locus in range(n_loci):
                        for h in range(2):
                            u = rng_g.random()
                            a = 0
                            while a < wild_cum.shape[1] - 1 and u >= wild_cum[locus, a]:
                                a += 1
                            geno[n, 2 * locus + h] = a
                    for locus in range(n_loci, n_all):
                        geno[n, 2 * locus] = next_lethal
                        geno[n, 2 * locus + 1] = next_lethal + 1
                        next_lethal += 2
                    occ[t] = n
                    n += 1

        if y > 0:
            # ------------------------------------------------------------ 1. survival
            for i in range(n):
                if st[i, _ALIVE] == 0:
                    continue
                a = st[i, _AGE]
                side = _side_of(st, i, spatial, side_f, side_m)
                if a >= first_breed:
                    s = surv[5] if st[i, _TERR] == -1 else surv[3 + st[i, _SEX]]
                elif a == 0:
                    s = surv[0]
                elif a == 1:
                    s = surv[1]
                else:
                    s = surv[2]
                if s_add[side] != 0.0:
                    s = min(1.0, max(0.0, s + s_add[side]))
                s *= s_mult[side]
                if a >= indep_age:
                    s *= 1.0 - poach
                dies = False
                if a == 0:
                    s *= math.exp(-b_neutral * finb[i])
                    for locus in range(n_loci, n_all):  # homozygous for a recessive lethal
                        if geno[i, 2 * locus] == geno[i, 2 * locus + 1]:
                            dies = True
                            ctr[C_LETHAL_DEATHS] += 1
                            break
                if max_age > 0 and a + 1 > max_age:
                    dies = True
                if dies or not rng.random() < s:
                    st[i, _ALIVE] = 0
            if cubs_die:
                for i in range(n):
                    m = st[i, _MOTHER]
                    if st[i, _ALIVE] == 1 and st[i, _AGE] == 0 and m >= 0 and st[m, _ALIVE] == 0:
                        st[i, _ALIVE] = 0
            # the dead: free territories, allele counts and kinship slots; compact; age
            newidx = np.full(n, -1, dtype=np.int64)
            k = 0
            for i in range(n):
                if st[i, _ALIVE] == 0:
                    t = st[i, _TERR]
                    if t >= 0:
                        if st[i, _SEX] == 0:
                            occ_f[t] = -1
                        else:
                            occ_m[t] = -1
                    if st[i, _CSIDE] >= 0:
                        _count(geno, i, n_loci, counts, st[i, _CSIDE], -1)
                    if st[i, _KSLOT] >= 0:
                        kfree[nfree] = st[i, _KSLOT]
                        nfree += 1
                    continue
                newidx[i] = k
                k += 1
            for i in range(n):
                j = newidx[i]
                if j < 0:
                    continue
                for c in range(_NCOL):
                    st[j, c] = st[i, c]
                for c in range(2 * n_all):
                    geno[j, c] = geno[i, c]
                finb[j] = finb[i]
                st[j, _AGE] += 1
                m = st[j, _MOTHER]
                st[j, _MOTHER] = newidx[m] if m >= 0 else -1
                t = st[j, _TERR]
                if t >= 0:
                    if st[j, _SEX] == 0:
                        occ_f[t] = j
                    else:
                        occ_m[t] = j
            n = k
            # ------------------------------------------------------------ 2. dispersal of independent young and floaters
            cand = np.empty(n, dtype=np.int64)
            nc = 0
            for i in range(n):
                if st[i, _TERR] == -1 and st[i, _AGE] >= indep_age:
                    cand[nc] = i
                    nc += 1
            if disperse:
                for a in range(nc - 1, 0, -1):  # Fisher-Yates shuffle
                    b = int(rng.random() * (a + 1))
                    tmp = cand[a]
                    cand[a] = cand[b]
                    cand[b] = tmp
                for c in range(nc):
                    i = cand[c]
                    sex = st[i, _SEX]
                    d = min(rng.exponential(mean_disp[sex]), max_disp)
                    if sex == 0:
                        t = _settle(st, i, spatial, ff_ptr, ff_index, ff_cost, occ_f, d)
                    else:
                        t = _settle(st, i, spatial, fm_ptr, fm_index, fm_cost, occ_m, d)
                    if t >= 0:
                        o = st[i, _ORIGIN]
                        s_from = side_f[o] if o >= 0 else 0
                        s_to = side_f[t] if sex == 0 else side_m[t]
                        if s_to == 1 and s_from == 0:
                            ctr[C_TO_SOURCE] += 1
                        elif s_from == 1 and s_to == 0:
                            ctr[C_FROM_SOURCE] += 1
                    elif t == -1 and not floaters:
                        st[i, _ALIVE] = 0  # dies: removed below
        # ---------------------------------------------------------------- 3. releases (founders and supplementation)
        for r in range(rel_year.size):
            if rel_year[r] != y:
                continue
            st, geno, finb = _grow(st, geno, finb, n, 1)
            sex = rel_sex[r]
            st[n, _AGE] = rel_age[r]
            st[n, _SEX] = sex
            st[n, _TERR] = -1
            st[n, _ORIGIN] = release_origin if spatial else -1
            st[n, _MOTHER] = -1
            st[n, _ALIVE] = 1
            st[n, _CSIDE] = -1
            st[n, _KSLOT] = -1
            st[n, _ID] = next_id
            next_id += 1
            finb[n] = 0.0
            cum = wild_cum if rel_kind[r] == 0 else capt_cum
            for locus in range(n_loci):
                for h in range(2):
                    u = rng_g.random()
                    a = 0
                    while a < cum.shape[1] - 1 and u >= cum[locus, a]:
                        a += 1
                    geno[n, 2 * locus + h] = a
            for locus in range(n_loci, n_all):
                geno[n, 2 * locus] = next_lethal
                geno[n, 2 * locus + 1] = next_lethal + 1
                next_lethal += 2
            if spatial:
                order = site_f if sex == 0 else site_m
                occ = occ_f if sex == 0 else occ_m
                for t in order:
                    if occ[t] < 0:
                        occ[t] = n
                        st[n, _TERR] = t
                        break
            else:
                st[n, _TERR] = _VIRTUAL
            n += 1
        # ---------------------------------------------------------------- 4. translocations (real animals, between sides)
        if spatial and tr_year.size > 0:
            picks = np.full(tr_year.size, -1, dtype=np.int64)
            taken = np.zeros(n, dtype=np.bool_)
            for r in range(tr_year.size):  # first take every animal out (an exchange swaps territories) ...
                if tr_year[r] != y:
                    continue
                sex = tr_sex[r]
                want = 1 if tr_dir[r] == 0 else 0  # side the animal is taken from
                pick = -1
                seen = 0
                for i in range(n):  # a random living independent (or territorial) animal of that sex on that side
                    indep = st[i, _AGE] >= indep_age or st[i, _TERR] >= 0  # cubs hold no territory
                    if st[i, _ALIVE] == 1 and not taken[i] and st[i, _SEX] == sex and indep:
                        if _side_of(st, i, spatial, side_f, side_m) == want:
                            seen += 1
                            if rng.random() * seen < 1.0:
                                pick = i
                if pick < 0:
                    continue
                taken[pick] = True
                picks[r] = pick
                t = st[pick, _TERR]
                if t >= 0:
                    if sex == 0:
                        occ_f[t] = -1
                    else:
                        occ_m[t] = -1
                st[pick, _TERR] = -1
            for r in range(tr_year.size):  # ... then settle them on the other side, nearest its release point first
                pick = picks[r]
                if pick < 0:
                    continue
                sex = tr_sex[r]
                to_site = tr_dir[r] == 0
                order = (site_f if sex == 0 else site_m) if to_site else (src_f if sex == 0 else src_m)
                st[pick, _ORIGIN] = release_origin if to_site else source_origin
                occ = occ_f if sex == 0 else occ_m
                for t2 in order:
                    if occ[t2] < 0:
                        occ[t2] = pick
                        st[pick, _TERR] = t2
                        break
        # ---------------------------------------------------------------- bookkeeping: sides of the counts and the pedigree
        for i in range(n):
            if st[i, _ALIVE] == 0:
                continue
            side = _side_of(st, i, spatial, side_f, side_m)
            cs = side if st[i, _AGE] >= indep_age else -1
            if cs != st[i, _CSIDE]:
                if st[i, _CSIDE] >= 0:
                    _count(geno, i, n_loci, counts, st[i, _CSIDE], -1)
                if cs >= 0:
                    _count(geno, i, n_loci, counts, cs, 1)
                st[i, _CSIDE] = cs
            tracked = st[i, _KSLOT] >= 0
            if side == 0 and not tracked and max_pedigree > 0:  # enters the site's pedigree, unrelated to it
                kin, slot, nfree, hw = _kin_alloc(kin, kfree, nfree, hw, max_pedigree)
                if slot < 0:
                    ctr[C_STATUS] = 1
                    return traj, gtraj, ctr, st[:0].copy(), finb[:0].copy()
                for j in range(hw):
                    kin[slot, j] = 0.0
                    kin[j, slot] = 0.0
                kin[slot, slot] = 0.5 * (1.0 + finb[i])
                st[i, _KSLOT] = slot
            elif side == 1 and tracked:  # leaves it
                kfree[nfree] = st[i, _KSLOT]
                nfree += 1
                st[i, _KSLOT] = -1
        # removals of this year (unsettled dispersers without floaters)
        for i in range(n):
            if st[i, _ALIVE] == 0:
                t = st[i, _TERR]
                if t >= 0:
                    if st[i, _SEX] == 0:
                        occ_f[t] = -1
                    else:
                        occ_m[t] = -1
                    st[i, _TERR] = -1
                if st[i, _CSIDE] >= 0:
                    _count(geno, i, n_loci, counts, st[i, _CSIDE], -1)
                    st[i, _CSIDE] = -1
                if st[i, _KSLOT] >= 0:
                    kfree[nfree] = st[i, _KSLOT]
                    nfree += 1
                    st[i, _KSLOT] = -1
        # ---------------------------------------------------------------- 5. breeding
        if y > 0:
            has_dep = np.zeros(n, dtype=np.bool_)
            n_elig = 0
            for i in range(n):
                m = st[i, _MOTHER]
                if m >= 0 and st[i, _AGE] < indep_age and st[i, _ALIVE] == 1:
                    has_dep[m] = True
                if st[i, _SEX] == 1 and st[i, _AGE] >= first_breed and st[i, _TERR] != -1 and st[i, _ALIVE] == 1:
                    if not spatial:
                        if n_elig >= eligible.size:
                            e2 = np.empty(2 * eligible.size, dtype=np.int64)
                            e2[:n_elig] = eligible[:n_elig]
                            eligible = e2
                        eligible[n_elig] = i
                        n_elig += 1
            n0 = n
            for i in range(n0):
                if st[i, _SEX] != 0 or st[i, _ALIVE] == 0 or st[i, _TERR] == -1:
                    continue
                if st[i, _AGE] < first_breed or has_dep[i]:
                    continue
                t = st[i, _TERR]
                side = _side_of(st, i, spatial, side_f, side_m)
                if spatial:  # the adult males holding a territory within reach
                    n_elig = 0
                    for j in range(fm_ptr[t], fm_ptr[t + 1]):
                        if fm_cost[j] > mate_reach:
                            break
                        mo = occ_m[fm_index[j]]
                        if mo >= 0 and st[mo, _AGE] >= first_breed:
                            if n_elig >= eligible.size:
                                e2 = np.empty(2 * eligible.size, dtype=np.int64)
                                e2[:n_elig] = eligible[:n_elig]
                                eligible = e2
                            eligible[n_elig] = mo
                            n_elig += 1
                if n_elig == 0:
                    continue
                pb = p_breed
                if b_add[side] != 0.0:
                    pb = min(1.0, max(0.0, pb + b_add[side]))
                pb *= b_mult[side]
                if rng.random() >= pb:
                    continue
                u = rng.random()
                size = 1
                while size < litter_cum.size and u >= litter_cum[size - 1]:
                    size += 1
                st, geno, finb = _grow(st, geno, finb, n, size)
                father = eligible[int(rng_g.random() * n_elig)]
                for _ in range(size):
                    if multi_pat:
                        father = eligible[int(rng_g.random() * n_elig)]
                    st[n, _AGE] = 0
                    st[n, _SEX] = 0 if rng.random() < female_share else 1
                    st[n, _TERR] = -1
                    st[n, _ORIGIN] = t if spatial else -1
                    st[n, _MOTHER] = i
                    st[n, _ALIVE] = 1
                    st[n, _CSIDE] = -1
                    st[n, _KSLOT] = -1
                    st[n, _ID] = next_id
                    next_id += 1
                    ctr[C_PARENT_AGE_SUM] += st[i, _AGE] + st[father, _AGE]
                    ctr[C_PARENTS] += 2
                    # Mendelian inheritance: one allele of each parent at every locus, chosen by a random bit
                    bits_m = np.int64(rng_g.random() * 4503599627370496.0)  # 52 random bits
                    bits_f = np.int64(rng_g.random() * 4503599627370496.0)
                    for locus in range(n_all):
                        if locus > 0 and locus % 52 == 0:
                            bits_m = np.int64(rng_g.random() * 4503599627370496.0)
                            bits_f = np.int64(rng_g.random() * 4503599627370496.0)
                        bm = (bits_m >> (locus % 52)) & 1
                        bf = (bits_f >> (locus % 52)) & 1
                        geno[n, 2 * locus] = geno[i, 2 * locus + bm]
                        geno[n, 2 * locus + 1] = geno[father, 2 * locus + bf]
                    # pedigree: the cub's inbreeding is its parents' kinship; its kinship row is their mean
                    km = st[i, _KSLOT]
                    kf = st[father, _KSLOT]
                    f_cub = kin[km, kf] if (km >= 0 and kf >= 0) else 0.0
                    finb[n] = f_cub
                    if side == 0 and max_pedigree > 0:
                        kin, slot, nfree, hw = _kin_alloc(kin, kfree, nfree, hw, max_pedigree)
                        if slot < 0:
                            ctr[C_STATUS] = 1
                            return traj, gtraj, ctr, st[:0].copy(), finb[:0].copy()
                        for j in range(hw):
                            v = 0.0
                            if km >= 0:
                                v += 0.5 * kin[km, j]
                            if kf >= 0:
                                v += 0.5 * kin[kf, j]
                            kin[slot, j] = v
                            kin[j, slot] = v
                        kin[slot, slot] = 0.5 * (1.0 + f_cub)
                        st[n, _KSLOT] = slot
                    n += 1
            # carrying capacity (without a density limit): random animals removed down to K
            if cap_k > 0:
                alive = 0
                for i in range(n):
                    if st[i, _ALIVE] == 1:
                        alive += 1
                excess = alive - cap_k
                while excess > 0:
                    j = int(rng.random() * n)
                    if st[j, _ALIVE] == 1:
                        st[j, _ALIVE] = 0
                        excess -= 1
                        t = st[j, _TERR]
                        if t >= 0:
                            if st[j, _SEX] == 0:
                                occ_f[t] = -1
                            else:
                                occ_m[t] = -1
                        if st[j, _CSIDE] >= 0:
                            _count(geno, j, n_loci, counts, st[j, _CSIDE], -1)
                            st[j, _CSIDE] = -1
                        if st[j, _KSLOT] >= 0:
                            kfree[nfree] = st[j, _KSLOT]
                            nfree += 1
                            st[j, _KSLOT] = -1
        # ---------------------------------------------------------------- 6. census
        f_sum = 0.0
        f_n = 0
        for i in range(n):
            if st[i, _ALIVE] == 0:
                continue
            sex = st[i, _SEX]
            adult = st[i, _AGE] >= first_breed
            side = _side_of(st, i, spatial, side_f, side_m)
            if side == 1:
                if adult:
                    traj[6, y] += 1
                continue
            traj[3, y] += 1
            traj[4 + sex, y] += 1
            if adult:
                traj[sex, y] += 1
                traj[2, y] += 1
            if st[i, _AGE] >= indep_age:
                f_sum += finb[i]
                f_n += 1
        if n_loci > 0:
            h_side = np.zeros(2)
            n_side = np.zeros(2)
            rich = 0.0
            ht = 0.0
            hs = 0.0
            for side in range(2):
                tot = 0
                for a in range(n_alleles):
                    tot += counts[side, 0, a]
                n_side[side] = tot
            for locus in range(n_loci):
                sq0 = 0.0
                sq1 = 0.0
                sqt = 0.0
                for a in range(n_alleles):
                    p0 = counts[0, locus, a] / n_side[0] if n_side[0] > 0 else 0.0
                    p1 = counts[1, locus, a] / n_side[1] if n_side[1] > 0 else 0.0
                    sq0 += p0 * p0
                    sq1 += p1 * p1
                    pt = 0.5 * (p0 + p1)
                    sqt += pt * pt
                    if counts[0, locus, a] > 0:
                        rich += 1.0
                h_side[0] += 1.0 - sq0
                h_side[1] += 1.0 - sq1
                ht += 1.0 - sqt
                hs += 0.5 * ((1.0 - sq0) + (1.0 - sq1))
            if n_side[0] > 0:
                gtraj[0, y] = h_side[0] / n_loci
                gtraj[1, y] = rich / n_loci
            if n_side[1] > 0:
                gtraj[4, y] = h_side[1] / n_loci
            if n_side[0] > 0 and n_side[1] > 0 and ht > 0:
                gtraj[3, y] = (ht - hs) / ht
        if f_n > 0:
            gtraj[2, y] = f_sum / f_n
    return traj, gtraj, ctr, st[:n].copy(), finb[:n].copy()
