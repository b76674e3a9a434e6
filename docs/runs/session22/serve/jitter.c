// Host hiccups: each thread spins on the clock for D seconds and records gaps > 20 us.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double D;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void* spin(void* a){long id=(long)a;double t0=now(),last=t0,tot=0;long n[6]={0};double mx=0;
 while(1){double t=now();double g=t-last;last=t;if(t-t0>D)break;
  if(g>20e-6){tot+=g; if(g>mx)mx=g; if(g>1e-3)n[3]++; else if(g>2e-4)n[2]++; else if(g>5e-5)n[1]++; else n[0]++; if(g>5e-3)n[4]++;}}
 printf("thread %ld: lost %.3f%% of %.0fs; gaps 20-50us %ld, 50-200us %ld, 0.2-1ms %ld, >1ms %ld, >5ms %ld, max %.2f ms\n",id,100*tot/D,D,n[0],n[1],n[2],n[3],n[4],mx*1e3);return 0;}
int main(int c,char**v){D=atof(v[1]);int T=atoi(v[2]);pthread_t th[8];for(long i=0;i<T;i++)pthread_create(&th[i],0,spin,(void*)i);for(int i=0;i<T;i++)pthread_join(th[i],0);}
