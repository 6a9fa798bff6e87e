/*
 * loadtime.c - once the library is loaded, gives back the pages that only
 * the dynamic loader reads.
 *
 * The loader reads the library's relocation table (DT_RELA: about 500 KB,
 * for the 21,000 pointers of the statically linked Swift runtime) while it
 * loads the library, and never again.  Its pages would stay mapped, and
 * counted in the host's resident set, for the life of the process.  This
 * constructor drops them with madvise(MADV_DONTNEED).  They belong to a
 * read-only, file-backed mapping that nothing ever wrote, so the kernel only
 * unmaps them; should anything read them again, it maps them back from the
 * file.  Only the pages that lie wholly inside the table are dropped, and
 * nothing is dropped unless the table sits in a segment that was never
 * writable (not even before RELRO made it read-only).
 *
 * The lazily bound PLT's table (DT_JMPREL) is kept: the loader reads it
 * whenever a library function is called for the first time.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

struct table {
    uintptr_t start;
    uintptr_t end;
};

static int contains(const struct dl_phdr_info *info, uintptr_t address) {
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + segment->p_vaddr;

        if (segment->p_type == PT_LOAD && address >= start &&
            address - start < segment->p_memsz)
            return 1;
    }
    return 0;
}

/* The relocation table, if the dynamic section names one. */
static struct table relocation_table(const struct dl_phdr_info *info) {
    struct table table = {0, 0};
    uintptr_t address = 0;
    uintptr_t size = 0;

    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];

        if (segment->p_type != PT_DYNAMIC)
            continue;
        for (const ElfW(Dyn) *entry =
                 (const ElfW(Dyn) *)(info->dlpi_addr + segment->p_vaddr);
             entry->d_tag != DT_NULL; entry++) {
            if (entry->d_tag == DT_RELA)
                address = entry->d_un.d_ptr;
            else if (entry->d_tag == DT_RELASZ)
                size = entry->d_un.d_val;
        }
    }
    if (address == 0 || size == 0)
        return table;
    /* glibc rewrites DT_RELA to an address when .dynamic is writable; other
     * loaders leave the offset from the load address. */
    if (address < info->dlpi_addr)
        address += info->dlpi_addr;
    table.start = address;
    table.end = address + size;
    return table;
}

/* True when [start, end) lies in a segment that was never writable. */
static int never_written(const struct dl_phdr_info *info, uintptr_t start,
                         uintptr_t end) {
    int inside = 0;

    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        uintptr_t low = info->dlpi_addr + segment->p_vaddr;
        uintptr_t high = low + segment->p_memsz;

        if (segment->p_type == PT_GNU_RELRO && start < high && low < end)
            return 0;
        if (segment->p_type == PT_LOAD && start >= low && end <= high) {
            if (segment->p_flags & PF_W)
                return 0;
            inside = 1;
        }
    }
    return inside;
}

static int drop_in_self(struct dl_phdr_info *info, size_t size, void *data) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct table table;
    uintptr_t start;
    uintptr_t end;

    (void)size;
    if (!contains(info, (uintptr_t)data))
        return 0;
    table = relocation_table(info);
    start = (table.start + page - 1) & ~(page - 1);
    end = table.end & ~(page - 1);
    /* A failure costs only the pages: there is nothing to report. */
    if (end > start && never_written(info, table.start, table.end))
        (void)madvise((void *)start, end - start, MADV_DONTNEED);
    return 1;
}

__attribute__((constructor)) static void drop_relocation_pages(void) {
    dl_iterate_phdr(drop_in_self, (void *)(uintptr_t)&drop_in_self);
}
