// The interactive 3D preview: loads a finished job's GLB (or STL) from its download URL into a
// three.js scene with orbit controls. Loaded lazily by studio.js, so the rest of the page works
// even where WebGL is switched off.
//
// Frames: orfeas meshes are +Z up in millimetres; its GLB files are glTF's +Y up in metres
// (docs/formats.md). STL geometry is turned into the GLB frame, so both lie flat like a tile on a
// table, relief up, image top away from the viewer; the camera looks down on it at an angle.
// A full 3D object (TripoSR) stands upright facing +Z, the photo's viewpoint: the camera starts
// in front of it, a little above, and can orbit all the way round (no angle limits). Vertex
// colours (GLB COLOR_0) are used as they are: GLTFLoader turns them on in the material.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { STLLoader } from 'three/addons/loaders/STLLoader.js';

export class ModelViewer {
  /** @param {HTMLElement} container the element the canvas fills */
  constructor(container) {
    this.container = container;
    // preserveDrawingBuffer keeps the last frame readable (screenshots, the browser test).
    this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.renderer.domElement.setAttribute('data-testid', 'preview-canvas');
    container.prepend(this.renderer.domElement);

    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.001, 1000);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8090a8, 1.6));
    const key = new THREE.DirectionalLight(0xffffff, 2.2);
    key.position.set(0.6, 1.0, 0.8);
    this.scene.add(key);
    const rim = new THREE.DirectionalLight(0xc8d4ff, 0.8);
    rim.position.set(-0.8, 0.4, -0.6);
    this.scene.add(rim);

    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.dampingFactor = 0.12;
    this.controls.autoRotateSpeed = 1.5;
    this.controls.listenToKeyEvents(container);
    this.controls.addEventListener('change', () => this.requestRender());

    this.model = null;
    this.grid = null;
    this.wireframe = false;
    this.frame = 0;
    this.loadToken = 0;
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  resize() {
    const { clientWidth: w, clientHeight: h } = this.container;
    if (!w || !h) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  /** Renders on demand; keeps going while damping settles or auto-rotate is on. */
  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const moving = this.controls.update();
      this.renderer.render(this.scene, this.camera);
      if (moving || this.controls.autoRotate) this.requestRender();
    });
  }

  /**
   * Loads a model; resolves with facts about it. A newer call supersedes an older one still loading.
   * @param {{url: string, format: 'glb'|'stl', object?: boolean}} source
   */
  async load(source, onProgress = () => {}) {
    const token = ++this.loadToken;
    const progress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    let object;
    if (source.format === 'glb') {
      const gltf = await new GLTFLoader().loadAsync(source.url, progress);
      object = gltf.scene;
    } else {
      const geometry = await new STLLoader().loadAsync(source.url, progress);
      geometry.rotateX(-Math.PI / 2); // +Z up (mm) → +Y up, as in our GLB files
      geometry.scale(0.001, 0.001, 0.001); // mm → m, so both formats share one scale
      if (!geometry.hasAttribute('normal')) geometry.computeVertexNormals();
      const material = new THREE.MeshStandardMaterial({ color: 0xb9c3d6, roughness: 0.55, metalness: 0.05 });
      object = new THREE.Mesh(geometry, material);
    }
    if (token !== this.loadToken) {
      disposeObject(object);
      throw new Error('superseded');
    }
    this.setModel(object, Boolean(source.object));
    return this.describe(object);
  }

  setModel(object, standing = false) {
    this.standing = standing;
    if (this.model) {
      this.scene.remove(this.model);
      disposeObject(this.model);
    }
    if (this.grid) {
      this.scene.remove(this.grid);
      this.grid.geometry.dispose();
      this.grid.material.dispose();
    }
    this.model = object;
    this.scene.add(object);
    this.applyWireframe();

    const box = new THREE.Box3().setFromObject(object);
    const size = box.getSize(new THREE.Vector3());
    const extent = Math.max(size.x, size.z, 1e-6);
    this.grid = new THREE.GridHelper(extent * 1.6, 16, 0x8b95ab, 0xc3cad8);
    this.grid.position.set((box.min.x + box.max.x) / 2, box.min.y - extent * 0.002, (box.min.z + box.max.z) / 2);
    this.grid.material.transparent = true;
    this.grid.material.opacity = 0.55;
    this.scene.add(this.grid);
    this.box = box;
    this.resetView();
  }

  /**
   * Frames the model. A relief: looking down at about 50°, image top away from the viewer. An
   * object: from the front (+Z) and a little above, free to turn every way.
   */
  resetView() {
    if (!this.box) return;
    // No limits on either angle: the whole object (or the back of a relief) can be looked at.
    this.controls.minPolarAngle = 0;
    this.controls.maxPolarAngle = Math.PI;
    this.controls.minAzimuthAngle = -Infinity;
    this.controls.maxAzimuthAngle = Infinity;
    const sphere = this.box.getBoundingSphere(new THREE.Sphere());
    const radius = Math.max(sphere.radius, 1e-6);
    const fov = THREE.MathUtils.degToRad(this.camera.fov);
    const distance = (radius / Math.sin(fov / 2)) * (this.camera.aspect < 1 ? 1.25 / this.camera.aspect : 1.0);
    const direction = this.standing
      ? new THREE.Vector3(0.35, 0.3, 0.89).normalize()
      : new THREE.Vector3(0.18, 0.78, 0.62).normalize();
    this.camera.position.copy(sphere.center).addScaledVector(direction, distance);
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(sphere.center);
    this.controls.minDistance = radius * 0.3;
    this.controls.maxDistance = distance * 6;
    this.controls.update();
    this.requestRender();
  }

  setAutoRotate(on) {
    this.controls.autoRotate = on;
    this.requestRender();
  }

  setWireframe(on) {
    this.wireframe = on;
    this.applyWireframe();
    this.requestRender();
  }

  applyWireframe() {
    this.model?.traverse((node) => {
      if (!node.isMesh) return;
      for (const material of [node.material].flat()) material.wireframe = this.wireframe;
    });
  }

  /** Triangle count, size in millimetres (the GLB frame is metres), whether vertex colours show. */
  describe(object) {
    let triangles = 0;
    let vertexColors = false;
    object.traverse((node) => {
      if (!node.isMesh) return;
      const g = node.geometry;
      triangles += (g.index ? g.index.count : g.attributes.position.count) / 3;
      if (g.hasAttribute('color') && [node.material].flat().some((m) => m.vertexColors)) vertexColors = true;
    });
    const size = new THREE.Box3().setFromObject(object).getSize(new THREE.Vector3()).multiplyScalar(1000);
    // In the +Y-up frame: x is the width, z the image height, y the thickness.
    return { triangles: Math.round(triangles), widthMm: size.x, heightMm: size.z, thicknessMm: size.y, vertexColors };
  }

  /** Draws one frame now (so callers can read pixels right after a load). */
  renderNow() {
    this.controls.update();
    this.renderer.render(this.scene, this.camera);
  }
}

function disposeObject(object) {
  object.traverse((node) => {
    if (node.geometry) node.geometry.dispose();
    for (const material of [node.material].flat().filter(Boolean)) {
      for (const value of Object.values(material)) if (value?.isTexture) value.dispose();
      material.dispose();
    }
  });
}
